"""Differentiable augmentation for D's inputs: DiffAugment (Zhao et al. 2020).

    aug = DiffAugment("color,translation,cutout")
    D(aug(real, generator=g)), D(aug(fake, generator=g))

The same kind of random transform is applied to real and fake images (each
image its own draw) before D sees them, differentiably, so G learns through
it. The transforms follow the authors' reference code
(github.com/mit-han-lab/data-efficient-gans, ``DiffAugment_pytorch.py``):

- ``color``: brightness + U(-½, ½); saturation × U(0, 2) around the pixel's
  channel mean; contrast × U(½, 3/2) around the image mean.
- ``translation``: shift by up to 1/8 of the size in x and y, zero padding.
- ``cutout``: zero a square of half the size at a random place.

Randomness: every draw comes from ``generator`` when one is passed (a CPU
generator works for images on any device: draws are made on its device and
moved), so the training's global random stream is left alone; with
``generator=None`` the draws come from the global torch generator of the
images' device, as in the reference code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.core.errors import GankitError, suggestion
from gankit.core.registry import component


def _rand(x: Tensor, shape, generator: torch.Generator | None) -> Tensor:
    """U[0, 1) of ``shape`` in x's dtype on x's device, from ``generator`` when given."""
    if generator is None:
        return torch.rand(shape, dtype=x.dtype, device=x.device)
    return torch.rand(shape, generator=generator, device=generator.device).to(x.device, x.dtype)


def _randint(x: Tensor, low: int, high: int, shape, generator: torch.Generator | None) -> Tensor:
    """Integers in [low, high) of ``shape`` on x's device, from ``generator`` when given."""
    if generator is None:
        return torch.randint(low, high, shape, device=x.device)
    return torch.randint(low, high, shape, generator=generator, device=generator.device).to(x.device)


def brightness(x: Tensor, g=None) -> Tensor:
    return x + (_rand(x, (x.shape[0], 1, 1, 1), g) - 0.5)  # x + U(-½, ½)


def saturation(x: Tensor, g=None) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)  # per pixel, over channels (a no-op on grey images)
    return (x - mean) * (_rand(x, (x.shape[0], 1, 1, 1), g) * 2) + mean  # × U(0, 2)


def contrast(x: Tensor, g=None) -> Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # per image
    return (x - mean) * (_rand(x, (x.shape[0], 1, 1, 1), g) + 0.5) + mean  # × U(½, 3/2)


def translation(x: Tensor, g=None, ratio: float = 0.125) -> Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)  # largest shift
    dy = _randint(x, -sh, sh + 1, (n, 1, 1), g)
    dx = _randint(x, -sw, sw + 1, (n, 1, 1), g)
    b, gy, gx = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                               torch.arange(w, device=x.device), indexing="ij")
    # Index into a 1-pixel zero border: source row y + dy + 1, clamped onto the border when it falls outside.
    gy = torch.clamp(gy + dy + 1, 0, h + 1)
    gx = torch.clamp(gx + dx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # N x C x (h+2) x (w+2)
    return padded.permute(0, 2, 3, 1)[b, gy, gx].permute(0, 3, 1, 2)  # gather: differentiable in x


def cutout(x: Tensor, g=None, ratio: float = 0.5) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)  # the square's size
    cy = _randint(x, 0, h + (1 - ch % 2), (n, 1, 1), g)  # its centre
    cx = _randint(x, 0, w + (1 - cw % 2), (n, 1, 1), g)
    b, gy, gx = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(ch, device=x.device),
                               torch.arange(cw, device=x.device), indexing="ij")
    gy = torch.clamp(gy + cy - ch // 2, 0, h - 1)
    gx = torch.clamp(gx + cx - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[b, gy, gx] = 0
    return x * mask.unsqueeze(1)


TRANSFORMS = {"color": (brightness, saturation, contrast), "translation": (translation,), "cutout": (cutout,)}


def parse_policy(policy: str) -> list[str]:
    """``"color, cutout"`` -> ``['color', 'cutout']``; an unknown or repeated name is an error naming the fix."""
    if not isinstance(policy, str):
        raise GankitError(f"augment.policy must be a comma-separated string such as 'color,translation,cutout', "
                          f"got {policy!r}")
    names = [p.strip() for p in policy.split(",")] if policy.strip() else []
    known = ", ".join(TRANSFORMS)
    for name in names:
        if not name:
            raise GankitError(f"augment.policy {policy!r} has an empty entry; write names separated by single commas "
                              f"(choose from {known})")
        if name not in TRANSFORMS:
            raise GankitError(f"augment.policy: {name!r} is not a DiffAugment transform"
                              f"{suggestion(name, TRANSFORMS)} (choose from {known})")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise GankitError(f"augment.policy {policy!r} names {', '.join(repeated)} more than once")
    if not names:
        raise GankitError(f"augment.policy is empty; name transforms ({known}) or leave out the augment section")
    return names


@component("augmentations", "diffaugment")
class DiffAugment:
    """DiffAugment with a ``policy``: transforms from color, translation, cutout, applied in that order given."""

    def __init__(self, policy: str = "color,translation,cutout"):
        self.policy = parse_policy(policy)
        self.fns = [fn for name in self.policy for fn in TRANSFORMS[name]]

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Augmented images (N x C x H x W), differentiable in ``x``; draws from ``generator`` (see module doc)."""
        if x.dim() != 4:
            raise ValueError(f"DiffAugment expects images N x C x H x W, got shape {tuple(x.shape)}")
        for fn in self.fns:
            x = fn(x, generator)
        return x

    def __repr__(self) -> str:
        return f"DiffAugment(policy={','.join(self.policy)!r})"
