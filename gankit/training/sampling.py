"""Generating images outside training: fixed-noise grids, ``gankit sample``, evaluation.

The generator runs in training mode (BatchNorm on the batch's own statistics),
as the tutorial makes its grids, but its BatchNorm running statistics are put
back afterwards: how often a run samples never changes its state.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import torch
from torch import Tensor, nn


@contextlib.contextmanager
def preserved_buffers(module: nn.Module):
    """Restore every buffer (BatchNorm running stats, counters) on exit."""
    saved = [(b, b.detach().clone()) for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, value in saved:
                buf.copy_(value)


@torch.no_grad()
def generate(G: nn.Module, z: Tensor, batch_size: int = 256, labels: Tensor | None = None) -> Tensor:
    """``G(z)`` (or ``G(z, labels)``) in chunks, without gradients and without touching G's state."""
    with preserved_buffers(G):
        if labels is None:
            return torch.cat([G(chunk) for chunk in z.split(batch_size)])
        return torch.cat([G(zc, lc) for zc, lc in zip(z.split(batch_size), labels.split(batch_size))])


def fixed_noise(n: int, nz: int, seed: int, device: torch.device) -> Tensor:
    """The grid's latent vectors, from a private generator (not the training stream)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, nz, generator=g).to(device)


def save_grid(images: Tensor, path: Path, nrow: int | None = None) -> Path:
    """Write images in [-1, 1] as one PNG grid, atomically."""
    path = Path(path)
    from torchvision.utils import save_image  # imported here: torchvision costs seconds at start-up

    nrow = nrow or max(1, math.isqrt(images.shape[0] - 1) + 1)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    save_image(images.float().cpu(), tmp, nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))
    os.replace(tmp, path)
    return path
