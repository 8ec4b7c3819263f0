"""How DataLoader worker processes start, and what a worker's failure tells the user.

Workers are started by a fork server (``multiprocessing_context="forkserver"``;
``spawn`` where there is none), not forked from the training process. By the
time the first batch is asked for, the training process may have started
wandb's service and its threads, initialised CUDA, or opened OpenMP thread
pools; a forked child inherits all of that half-copied (wandb's import hooks
refuse to run in it, CUDA cannot be re-initialised, a lock held by another
thread stays held forever). The fork server is a fresh interpreter started
once per training process: it imports torch, PIL and gankit's image code
(:data:`PRELOAD`) and forks each worker from that clean state in
milliseconds. Workers persist across epochs (``persistent_workers``), so a
small dataset does not pay their start every epoch.

The dataset reaches the workers pickled; a dataset class from a recipe's
``.py`` plugin is importable there by name (:mod:`gankit.core.fileplugins`).
"""

from __future__ import annotations

import multiprocessing
import re
from typing import Any

from gankit.core.errors import GankitError

PRELOAD = ["torch", "PIL.Image", "torchvision.transforms.functional", "gankit.data.transforms",
           "gankit.core.fileplugins"]


def worker_context() -> multiprocessing.context.BaseContext:
    """The fork server's context (its modules preloaded); ``spawn`` on platforms without one."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # only read when the server starts (the first time workers do)
    return ctx


def loader_options(workers: int, persistent: bool = True) -> dict[str, Any]:
    """DataLoader keyword arguments for ``workers`` processes (none for 0: loading in this process)."""
    if workers == 0:
        return {"num_workers": 0}
    return {"num_workers": workers, "multiprocessing_context": worker_context(), "persistent_workers": persistent}


class WorkerError(GankitError):
    """A data-loading worker raised something other than an unreadable image (which is a BadImage)."""


def worker_failure(exc: BaseException, dataset: str) -> WorkerError | None:
    """A clean error for an exception a DataLoader worker raised (None if ``exc`` is not one).

    torch re-raises a worker's exception in the training process with the
    worker's traceback folded into the message; this keeps the exception's
    type, message and last frame, and says what failed.
    """
    text = str(exc)
    if "DataLoader worker" not in text:
        return None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    last = lines[-1].strip() if lines else type(exc).__name__
    frames = re.findall(r'File "([^"]+)", line (\d+)', text)
    where = f" (at {frames[-1][0]}:{frames[-1][1]})" if frames else ""
    what = "could not import a module" if isinstance(exc, ImportError) or "ImportError" in last or \
        "ModuleNotFoundError" in last else "failed"
    return WorkerError(
        f"the data-loading worker {what} while reading dataset '{dataset}': {last}{where}\n"
        "    this is not an unreadable image; set data.workers: 0 to load in the training process "
        "and see the full traceback"
    )
