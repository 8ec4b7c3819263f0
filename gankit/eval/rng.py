"""Evaluation's own random streams, and a fence around the global ones.

Every random draw of an evaluation (latents, real subset, KID subsets, IS
shuffle, SWD patches and directions) comes from a generator seeded from
``eval.seed`` and the stream's name, so a checkpoint always gets the same
numbers and training's stream is never consumed. :func:`isolated_global_rng`
additionally fences code gankit does not control (a generator with noise
layers, a dataset with random transforms): inside it the global torch RNG is
seeded from ``eval.seed``; on exit torch's (CPU and CUDA), numpy's and
Python's global states are exactly as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator

import numpy as np
import torch


def stream_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the named stream: independent streams from one ``eval.seed``."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{stream}".encode()).digest()[:8], "little") >> 1


def torch_generator(seed: int, stream: str) -> torch.Generator:
    return torch.Generator().manual_seed(stream_seed(seed, stream))


def numpy_generator(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng(stream_seed(seed, stream))


@contextlib.contextmanager
def isolated_global_rng(seed: int) -> Iterator[None]:
    """Run a block with the global RNGs seeded from ``seed``, then restore them exactly."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=devices):
        # Only the CPU generator and already-initialised CUDA devices: seeding a
        # CUDA device lazily would take effect after the fork is restored.
        torch.default_generator.manual_seed(stream_seed(seed, "global"))
        for d in devices:
            with torch.cuda.device(d):
                torch.cuda.manual_seed(stream_seed(seed, "global"))
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
