"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint holds everything an exact resume needs: G, D, both optimizers,
the step, epoch and position inside the epoch, every random state (torch,
CUDA, numpy, Python, the data loader's) and the resolved recipe. Only
tensors and plain Python values are stored, so loading never runs code.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.errors import CheckpointError

FORMAT_VERSION = 1


def rng_state(loader_generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every random stream's state, as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": [version, list(internal), gauss],
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if loader_generator is not None:
        state["loader"] = loader_generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], loader_generator: torch.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if loader_generator is not None and "loader" in state:
        loader_generator.set_state(state["loader"])


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, fsync, then rename over ``path``.

    A crash at any moment leaves either the old file or the new one, never a
    half-written one.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run directory's ``checkpoints/last.pt``."""
    path = Path(path)
    if path.is_dir():
        candidate = path / "checkpoints" / "last.pt"
        if not candidate.is_file():
            raise CheckpointError(f"'{path}' has no checkpoints/last.pt; is it a gankit run directory?")
        return candidate
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint (file or run directory) safely: ``weights_only=True``."""
    path = find_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated, corrupted, or a pickle that wants to run code
        raise CheckpointError(f"checkpoint '{path}' cannot be loaded safely: {type(exc).__name__}: {exc}") from None
    if not isinstance(ckpt, dict) or "format" not in ckpt:
        raise CheckpointError(f"'{path}' is not a gankit checkpoint")
    if ckpt["format"] > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint '{path}' was written by a newer gankit (format {ckpt['format']}, "
            f"this gankit reads up to {FORMAT_VERSION}); upgrade gankit"
        )
    return ckpt


def load_state(module: torch.nn.Module, state: dict[str, Any], what: str, path: str) -> None:
    """``load_state_dict`` with a clear error naming mismatched tensors."""
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()]
        raise CheckpointError(
            f"checkpoint '{path}' does not fit this recipe's {what}:\n    " + "\n    ".join(lines[:8])
        ) from None
