"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018, Progressive GAN).

Needs no network and no weights, so an offline run still measures something.
Per image, a Laplacian pyramid from full resolution down to 16x16 (Gaussian
kernel [1 4 6 4 1]^2 / 256, mirrored edges); from each level, 7x7 patches at
random positions ("descriptors"). Each set's descriptors are normalised per
channel (mean 0, std 1 over all its descriptors). Per level, SWD is the 1-D
Wasserstein-1 distance between the sets' projections on random unit
directions (sorted projections compared pointwise), averaged over 4 x 128
directions; reported x 1e3 as in the paper, and averaged over levels.

The paper takes 128 patches per image; here at most 2^16 descriptors per level
and set (fewer per image for large sets) keep memory bounded. Patch positions,
subsampling and directions come from the caller's seeded generator.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.eval.errors import EvalError

NHOOD = 7  # patch size
PER_IMAGE = 128  # patches per image and level (the paper's)
MAX_DESCRIPTORS = 1 << 16  # per level and set
DIR_REPEATS, DIRS_PER_REPEAT = 4, 128
MIN_RESOLUTION = 16
SCALE = 1e3

_k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
GAUSS = (_k[:, None] * _k[None, :]) / 256.0


def _blur(x: Tensor) -> Tensor:
    c = x.shape[1]
    kernel = GAUSS.to(x)[None, None].expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=c)


def _down(x: Tensor) -> Tensor:
    return _blur(x)[:, :, ::2, ::2]


def _up(x: Tensor) -> Tensor:
    n, c, h, w = x.shape
    y = x.new_zeros(n, c, 2 * h, 2 * w)
    y[:, :, ::2, ::2] = x
    return _blur(y) * 4  # the zeros take 3/4 of the kernel's mass


def resolutions(size: int) -> list[int]:
    """Pyramid levels: size, size/2, ... while >= 16 (just ``size`` for smaller images)."""
    levels = [size]
    while levels[-1] // 2 >= MIN_RESOLUTION:
        levels.append(levels[-1] // 2)
    return levels


def laplacian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """[band-pass levels..., the smallest Gaussian level]: L_i = G_i - up(G_{i+1})."""
    pyramid = [x]
    for _ in range(levels - 1):
        pyramid.append(_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - _up(pyramid[-1])
    return pyramid


class Descriptors:
    """Collects one set's patch descriptors, batch by batch."""

    def __init__(self, num_images: int, generator: torch.Generator):
        self.per_image = max(1, min(PER_IMAGE, MAX_DESCRIPTORS // max(num_images, 1)))
        self.generator = generator
        self.levels: list[list[Tensor]] | None = None
        self.size: int | None = None

    def add(self, images: Tensor) -> None:
        """``images``: uint8 (N, C, H, W), square, at least 7 pixels."""
        n, c, h, w = images.shape
        if h != w or h < NHOOD:
            raise EvalError(f"swd needs square images of at least {NHOOD} pixels, got {h}x{w}")
        if self.size is None:
            self.size = h
            self.levels = [[] for _ in resolutions(h)]
        elif h != self.size:
            raise EvalError(f"swd needs images of one size, got {self.size}px and {h}px")
        half = NHOOD // 2
        for level, store in zip(laplacian_pyramid(images.float(), len(self.levels)), self.levels):
            s = level.shape[-1]
            m = n * self.per_image
            img = torch.arange(n).repeat_interleave(self.per_image)
            ys = torch.randint(half, s - half, (m,), generator=self.generator)
            xs = torch.randint(half, s - half, (m,), generator=self.generator)
            patches = level.cpu().unfold(2, NHOOD, 1).unfold(3, NHOOD, 1)  # (N, C, s-6, s-6, 7, 7) view
            store.append(patches[img, :, ys - half, xs - half].clone())  # (m, C, 7, 7)

    def finish(self) -> list[Tensor]:
        """Per level: (M, C*49) float64 descriptors, normalised per channel over the set."""
        out = []
        for store in self.levels or []:
            d = torch.cat(store).to(torch.float64)
            d = d - d.mean(dim=(0, 2, 3), keepdim=True)
            d = d / d.std(dim=(0, 2, 3), keepdim=True, unbiased=False).clamp(min=1e-8)
            out.append(d.reshape(d.shape[0], -1))
        return out


def _sort_rows(arrays: list[np.ndarray], pool: ThreadPoolExecutor | None, threads: int) -> None:
    """Sort each row of these 2-D arrays in place, in row blocks over ``threads`` threads of ``pool``.

    numpy's sort is several times faster than torch's on the CPU and releases
    the GIL while it sorts, so the blocks run in parallel.
    """
    if pool is None:
        for x in arrays:
            x.sort(axis=1)
        return
    rows = -(-arrays[0].shape[0] // threads)
    jobs = [pool.submit(x[lo:lo + rows].sort, axis=1) for x in arrays for lo in range(0, x.shape[0], rows)]
    for job in jobs:
        job.result()


def sliced_wasserstein(a: Tensor, b: Tensor, generator: torch.Generator) -> float:
    """Mean over DIR_REPEATS x DIRS_PER_REPEAT unit directions of W1(a.dir, b.dir).

    With equal counts, W1 between two empirical 1-D distributions is the mean
    |sorted(a.dir) - sorted(b.dir)|; the larger set is subsampled to the other's size.
    Projections are float32, as in the reference implementation (its directions
    are cast to float32); the mean is accumulated in float64. On the CPU the
    projections and sorts run in numpy (OpenBLAS's matmul and numpy's sort are
    the faster ones there), one direction per row so that each sort runs along
    memory, the rows spread over torch's intra-op thread count.
    """
    n = min(a.shape[0], b.shape[0])
    a = a[torch.randperm(a.shape[0], generator=generator)[:n]]
    b = b[torch.randperm(b.shape[0], generator=generator)[:n]]
    # (d, n): the projections come out one direction per row.
    a_t, b_t = (x.T.to(torch.float32, memory_format=torch.contiguous_format) for x in (a, b))
    cpu = a.device.type == "cpu"
    threads = torch.get_num_threads() if cpu else 1
    results = []
    with ThreadPoolExecutor(threads) if threads > 1 else contextlib.nullcontext() as pool:
        for _ in range(DIR_REPEATS):
            dirs = torch.randn(a.shape[1], DIRS_PER_REPEAT, generator=generator, dtype=torch.float64)
            dirs_t = (dirs / dirs.norm(dim=0, keepdim=True)).T.to(torch.float32, memory_format=torch.contiguous_format)
            if cpu:
                pa, pb = dirs_t.numpy() @ a_t.numpy(), dirs_t.numpy() @ b_t.numpy()  # (directions, n)
                _sort_rows([pa, pb], pool, threads)
                dist = np.abs(np.subtract(pa, pb, out=pa), out=pa)
                results.append(float(dist.mean(dtype=np.float64)))
            else:
                dirs_t = dirs_t.to(a.device)
                pa, pb = (dirs_t @ a_t).sort(dim=1).values, (dirs_t @ b_t).sort(dim=1).values
                results.append(float((pa - pb).abs().mean(dtype=torch.float64)))
    return sum(results) / len(results)


def swd(real: list[Tensor], fake: list[Tensor], generator: torch.Generator) -> tuple[float, list[float]]:
    """(mean over levels, [SWD per level, finest first]) of two sets' finished descriptors, x 1e3."""
    if len(real) != len(fake):
        raise EvalError("swd: real and generated images have different sizes; SWD compares images of one size")
    per_level = [sliced_wasserstein(r, f, generator) * SCALE for r, f in zip(real, fake)]
    return sum(per_level) / len(per_level), per_level
