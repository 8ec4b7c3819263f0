"""The checkpoint file: written atomically with a checksum, read with ``weights_only=True``.

What a checkpoint holds is the run state's to say
(:class:`gankit.training.state.RunState`): everything an exact resume needs,
as tensors and plain Python values only, so loading never runs code. This
module knows the file: its wrapper, its checks, and the keys any complete
checkpoint has (:data:`REQUIRED`), which is all the readers of a run
(``gankit sample``, ``eval``, ``export``) rely on.

On disk (format 2) the state is serialized once more inside a small wrapper,
``{"format", "gankit_version", "sha256", "payload"}``, so that a truncated or
corrupted file is recognised as such, and a file from a newer gankit can say
which version wrote it before anything else is read. Format 1 files (plain
state dicts without a checksum, written by gankit before format 2) still load.

Writing ``last.pt`` keeps the checkpoint it replaces as ``last.prev.pt``, the
fallback offered when ``last.pt`` turns out to be damaged.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from gankit.core.version import __version__
from gankit.core.errors import CheckpointError
from gankit.core.paths import fsync_dir

FORMAT_VERSION = 2
# What a resume reads from a checkpoint; a file without one of these is not a complete checkpoint.
REQUIRED = ("run_id", "recipe", "step", "epoch", "batch_in_epoch", "generator", "discriminator",
            "optim_g", "optim_d", "rng")


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (disk full, unwritable folder); the previous one is intact."""


# -- writing ------------------------------------------------------------------------
def encode(state: Any) -> bytes:
    """The bytes of a format-2 checkpoint holding ``state``."""
    inner = io.BytesIO()
    torch.save(state, inner)
    view = inner.getbuffer()
    wrapper = {
        "format": FORMAT_VERSION,
        "gankit_version": __version__,
        "sha256": hashlib.sha256(view).hexdigest(),
        "payload": torch.frombuffer(view, dtype=torch.uint8),  # no copy: a view of the serialized state
    }
    outer = io.BytesIO()
    torch.save(wrapper, outer)
    del wrapper, view  # release the view so ``inner`` can be freed
    return outer.getvalue()


def previous_path(path: Path) -> Path:
    """``last.pt`` -> ``last.prev.pt``."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def _link_or_copy(src: Path, dst: Path) -> None:
    """Make ``dst`` a copy of ``src`` atomically (a hard link where the filesystem allows)."""
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(src, tmp)  # free, and files are never modified in place, only replaced
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_save(state: Any, path: Path, *, keep_previous: bool = False) -> None:
    """Write ``state`` to ``path`` so that a crash at any moment leaves a loadable file.

    The bytes go to a temporary file, are fsynced, and only then renamed over
    ``path``. With ``keep_previous`` the file being replaced stays as
    ``<name>.prev.pt``. A failed write (disk full, unwritable folder) is a
    :class:`CheckpointWriteError` naming the path; ``path`` is then untouched.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(encode(state))
            f.flush()
            os.fsync(f.fileno())
        if keep_previous and path.is_file():
            _link_or_copy(path, previous_path(path))
        os.replace(tmp, path)
    except OSError as exc:
        _unlink_quietly(tmp)
        kept = f"; the previous checkpoint '{path}' is intact" if path.is_file() else ""
        raise CheckpointWriteError(
            f"cannot write checkpoint '{exc.filename or tmp}': {exc.strerror or exc}{kept}\n"
            "    free some disk space or make the folder writable, then resume the run"
        ) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    fsync_dir(path.parent)


def copy_checkpoint(src: Path, dst: Path) -> None:
    """``best.pt`` from ``last.pt``: atomically, as a hard link where possible."""
    try:
        _link_or_copy(Path(src), Path(dst))
    except OSError as exc:
        raise CheckpointWriteError(f"cannot write checkpoint '{dst}': {exc.strerror or exc}") from None


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete temporaries left in ``folder`` by a writer that was killed; returns them.

    A temporary's name ends with its writer's process id; one whose process
    still runs is left alone.
    """
    removed = []
    for tmp in Path(folder).glob(".*.pt.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        _unlink_quietly(tmp)
        removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


# -- reading ------------------------------------------------------------------------
def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run directory's ``checkpoints/last.pt``."""
    path = Path(path)
    if path.is_dir():
        candidate = path / "checkpoints" / "last.pt"
        if not candidate.is_file():
            prev = previous_path(candidate)
            hint = f"; its previous one is there: gankit run --resume {prev}" if prev.is_file() else \
                "; is it a gankit run directory?"
            raise CheckpointError(f"'{path}' has no checkpoints/last.pt{hint}")
        return candidate
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    return path


def _torch_load(source, path: Path, map_location) -> Any:
    """``torch.load(weights_only=True)``; a refusal or a damaged file is a CheckpointError."""
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except Exception as exc:
        text = str(exc)
        if "Weights only load failed" in text:
            culprit = next((ln.strip() for ln in text.splitlines() if "Unsupported" in ln), "")
            raise CheckpointError(
                f"checkpoint '{path}' refused: it holds objects that would run code when loaded"
                f"{f' ({culprit})' if culprit else ''}; gankit only loads tensors and plain values, "
                "so nothing in it was run"
            ) from None
        raise _Damaged(f"truncated or corrupted ({type(exc).__name__}: {text.splitlines()[0] if text else ''})") from None


class _Damaged(Exception):
    """Internal: the file is not what it should be; load_checkpoint adds the fallback."""


def _newer(path: Path, fmt: Any, version: Any) -> CheckpointError:
    by = f"gankit {version}" if isinstance(version, str) else "a newer gankit"
    return CheckpointError(
        f"checkpoint '{path}' was written by {by} (checkpoint format {fmt}); this gankit {__version__} "
        f"reads formats up to {FORMAT_VERSION}: upgrade gankit to load it"
    )


def _decode(path: Path, map_location) -> dict[str, Any]:
    if path.stat().st_size == 0:
        raise _Damaged("empty (0 bytes): its write never finished")
    outer = _torch_load(path, path, "cpu")
    if not isinstance(outer, dict) or not isinstance(outer.get("format"), int):
        raise CheckpointError(f"'{path}' is not a gankit checkpoint")
    if outer["format"] > FORMAT_VERSION:
        raise _newer(path, outer["format"], outer.get("gankit_version"))
    if "payload" not in outer:
        return outer  # format 1: the state itself, without a checksum
    payload, digest = outer["payload"], outer.get("sha256")
    if not isinstance(payload, torch.Tensor) or payload.dtype != torch.uint8 or not isinstance(digest, str):
        raise _Damaged("corrupted: its wrapper is malformed")
    data = payload.contiguous().numpy().tobytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise _Damaged("corrupted: its checksum does not match its contents")
    state = _torch_load(io.BytesIO(data), path, map_location)
    if not isinstance(state, dict):
        raise CheckpointError(f"'{path}' is not a gankit checkpoint")
    return state


def _check_complete(path: Path, state: dict[str, Any]) -> None:
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"'{path}' is not a complete gankit checkpoint: missing {', '.join(missing)}")
    if not isinstance(state["recipe"], dict) or not all(isinstance(state[k], int) for k in ("step", "epoch", "batch_in_epoch")):
        raise CheckpointError(f"'{path}' is not a complete gankit checkpoint: malformed recipe or step")


def _fallback_hint(path: Path) -> str:
    """Where a damaged checkpoint's predecessor is, when it is intact."""
    prev = previous_path(path)
    if path.name != "last.pt" or not prev.is_file():
        return "\n    no earlier checkpoint to fall back to"
    try:
        step = _decode(prev, "cpu")["step"]
    except Exception:
        return f"\n    the previous checkpoint '{prev}' is damaged too"
    return (
        f"\n    the previous checkpoint '{prev}' (step {step}) is intact; continue from it with:"
        f"\n    gankit run --resume {prev}"
    )


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint (file or run directory) safely: ``weights_only=True``, checksum verified."""
    path = find_checkpoint(path)
    try:
        state = _decode(path, map_location)
    except _Damaged as exc:
        raise CheckpointError(f"checkpoint '{path}' is {exc}{_fallback_hint(path)}") from None
    except OSError as exc:
        raise CheckpointError(f"checkpoint '{path}' cannot be read: {exc.strerror or exc}") from None
    fmt = state.get("format", 1)
    if not isinstance(fmt, int):
        raise CheckpointError(f"'{path}' is not a gankit checkpoint")
    if fmt > FORMAT_VERSION:
        raise _newer(path, fmt, state.get("gankit_version"))
    _check_complete(path, state)
    return state


def load_state(module: torch.nn.Module, state: dict[str, Any], what: str, path: str) -> None:
    """``load_state_dict`` with a clear error naming mismatched tensors."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()] or [str(exc)]
        raise CheckpointError(
            f"checkpoint '{path}' does not fit this recipe's {what}:\n    " + "\n    ".join(lines[:8])
        ) from None


def load_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any], what: str, path: str) -> None:
    """``Optimizer.load_state_dict`` with a clear error instead of a traceback."""
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint '{path}' does not fit this recipe's {what}: {exc}") from None
