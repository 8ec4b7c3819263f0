"""Latent vectors: seeded noise, the truncation trick for z, and paths between latents.

Every draw comes from a private CPU generator seeded by the caller, never
from the training's streams, and is then moved to the device: the same seed
gives the same latents on any device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gankit.core.errors import GankitError


def fixed_noise(n: int, nz: int, seed: int, device: torch.device | str = "cpu") -> Tensor:
    """``n`` latents z ~ N(0, I) of size ``nz`` from ``seed`` (the training grids' and ``gankit sample``'s)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, nz, generator=g).to(device)


def truncated_noise(n: int, nz: int, seed: int, psi: float, device: torch.device | str = "cpu") -> Tensor:
    """z ~ N(0, I) with every entry of magnitude above ``psi`` drawn again (BigGAN's truncation trick).

    The result is a normal distribution truncated to [-psi, psi]; smaller psi
    trades variety for typical, cleaner images.
    """
    if not psi > 0:
        raise GankitError(f"--truncation must be > 0 for a z-only generator (BigGAN's form), got {psi}")
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, nz, generator=g)
    outside = z.abs() > psi
    while outside.any():  # each redraw keeps ~P(|N(0,1)| <= psi) of the rest: a few rounds even at psi = 0.5
        z[outside] = torch.randn(int(outside.sum()), generator=g)
        outside = z.abs() > psi
    return z.to(device)


def latents(n: int, nz: int, seed: int = 0, truncation: float | None = None,
            device: torch.device | str = "cpu") -> Tensor:
    """``n`` latents from ``seed``; with ``truncation`` (for generators without their own form) truncated."""
    if truncation is None:
        return fixed_noise(n, nz, seed, device)
    return truncated_noise(n, nz, seed, truncation, device)


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """(1 - t) a + t b, for each t (shape (K,)): (K, nz)."""
    t = t.to(a.dtype)[:, None]
    return (1 - t) * a[None] + t * b[None]


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation: along the great circle from a to b, the norm interpolated linearly.

    For Gaussian z most mass sits near the sphere of radius √nz; a straight
    line between two latents cuts inside it, through less likely latents, so
    slerp is the usual choice (White 2016).
    """
    t = t.to(a.dtype)[:, None]
    na, nb = a.norm(), b.norm()
    ua, ub = a / na.clamp_min(1e-12), b / nb.clamp_min(1e-12)
    omega = torch.arccos((ua * ub).sum().clamp(-1, 1))
    if float(omega) < 1e-6:  # (almost) the same direction: the straight line is the arc
        direction = lerp(ua, ub, t.flatten())
    else:
        direction = (torch.sin((1 - t) * omega) * ua[None] + torch.sin(t * omega) * ub[None]) / torch.sin(omega)
    return direction * ((1 - t) * na + t * nb)


def interpolation(a: Tensor, b: Tensor, steps: int, mode: str = "slerp") -> Tensor:
    """``steps`` latents from ``a`` to ``b`` (both ends included): (steps, nz)."""
    if steps < 2:
        raise GankitError(f"--interpolate needs at least 2 columns (both ends), got {steps}")
    t = torch.linspace(0, 1, steps)
    return slerp(a, b, t) if mode == "slerp" else lerp(a, b, t)
