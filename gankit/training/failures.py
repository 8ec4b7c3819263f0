"""Failures a user can act on, turned into :class:`GankitError` (exit 2, no traceback).

Out of memory (a recipe asking for more than the machine has), a full or
unwritable disk, an optimizer refusing its arguments. Anything else keeps its
traceback: it is a bug somewhere.
"""

from __future__ import annotations

import errno
import re

import torch

from gankit.core.errors import GankitError
from gankit.recipe.optimizers import build_optimizer

# errno values that mean "this folder cannot take this write"
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO}
_MEMORY_WORDS = ("can't allocate memory", "out of memory", "size calculation overflowed")


def is_out_of_memory(exc: BaseException) -> bool:
    """torch reports a failed allocation as a RuntimeError (CPU) or OutOfMemoryError (CUDA)."""
    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or any(w in str(exc) for w in _MEMORY_WORDS)


def memory_error(exc: BaseException, during: str) -> GankitError:
    text = str(exc).strip()
    asked = re.search(r"tried to allocate (\d+) bytes", text)
    what = f"it asked for {int(asked[1]) / 2**30:,.1f} GiB at once" if asked else (text.splitlines() or ["?"])[-1]
    return GankitError(f"out of memory during {during}: {what}\n    the recipe asks for more memory than there is: "
                       "reduce data.image_size, data.batch_size, train.num_samples or the networks' width")


def disk_error(exc: OSError, where) -> GankitError:
    return GankitError(f"cannot write to '{where}' ({exc.filename or 'metrics.jsonl'}): {exc.strerror or exc}")


def checked_optimizer(spec, module: torch.nn.Module, where: str) -> torch.optim.Optimizer:
    """The recipe's optimizer for ``module``; torch's own argument checks become recipe errors."""
    try:
        return build_optimizer(spec, module.parameters())
    except (ValueError, TypeError) as exc:  # betas in [0, 1), eps >= 0, ...
        raise GankitError(f"{where}: optimizer '{spec.name}' rejected its arguments: {exc}") from None
