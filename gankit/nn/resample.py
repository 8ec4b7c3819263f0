"""FIR resampling of images: upsample, pad, filter and downsample in one call.

    f = setup_filter([1, 3, 3, 1])          # StyleGAN2's filter; R3GAN uses [1, 2, 1]
    y = upsample2d(x, f)                     # N x C x 2H x 2W
    y = downsample2d(x, f)                   # N x C x H/2 x W/2

:func:`upfirdn2d` is the operation StyleGAN2 (NVlabs/stylegan2-ada-pytorch,
``torch_utils/ops/upfirdn2d.py``) builds its layers on: insert ``up - 1``
zeros between pixels, pad (or crop, for negative padding), convolve every
channel with the same 2-D FIR filter, keep every ``down``-th pixel. Here it
is written with plain ``F.pad`` and a grouped ``F.conv2d``, so there is no
CUDA extension to build and the result is differentiable to any order
(R1 through augmentation needs gradients of gradients).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Padding = int | Sequence[int]


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    """``2`` -> (2, 2); ``(x, y)`` stays (x, y)."""
    if isinstance(v, int):
        return v, v
    x, y = v
    return int(x), int(y)


def _padding(padding: Padding) -> tuple[int, int, int, int]:
    """``p``, ``(px, py)`` or ``(x0, x1, y0, y1)`` -> (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        return px, px, py, py
    x0, x1, y0, y1 = padding
    return x0, x1, y0, y1


def setup_filter(f: Sequence[float] | Tensor | None, *, normalize: bool = True, flip: bool = False,
                 gain: float = 1.0, separable: bool | None = None, device: torch.device | str = "cpu") -> Tensor:
    """A float32 FIR filter tensor from taps: 1-D taps become their outer product (a 2-D filter)
    unless ``separable`` (default: long filters of 8 taps or more stay 1-D and run as two passes).

    ``normalize`` scales the taps to sum to 1, ``gain`` multiplies the overall
    response (spread over both axes), ``flip`` mirrors the filter.
    """
    f = torch.as_tensor(1.0 if f is None else f, dtype=torch.float32, device=device)
    if f.ndim == 0:
        f = f[None]
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError(f"a FIR filter has one or two axes of taps, got shape {tuple(f.shape)}")
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if flip:
        f = f.flip(list(range(f.ndim)))
    return f * (gain ** (f.ndim / 2))  # a 2-D filter carries the gain once, a separable one half per axis


def filter_size(f: Tensor | None) -> tuple[int, int]:
    """(width, height) of a filter; (1, 1) for none."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[1], f.shape[0]


def upfirdn2d(x: Tensor, f: Tensor | None, up: int | Sequence[int] = 1, down: int | Sequence[int] = 1,
              padding: Padding = 0, flip_filter: bool = False, gain: float = 1.0) -> Tensor:
    """Upsample by zero insertion, pad, FIR-filter and downsample ``x`` (N x C x H x W).

    ``padding`` is ``p``, ``(px, py)`` or ``(x0, x1, y0, y1)`` in pixels of the
    upsampled image; negative values crop. The filter is applied as a true
    convolution (flipped) unless ``flip_filter``.
    """
    if f is None:
        f = torch.ones(1, 1, dtype=torch.float32, device=x.device)
    n, c, h, w = x.shape
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    x0, x1, y0, y1 = _padding(padding)

    # Zero insertion: each pixel followed by up - 1 zeros along each axis.
    if upx > 1 or upy > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)

    # Pad where positive, then crop where negative.
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0): x.shape[2] - max(-y1, 0), max(-x0, 0): x.shape[3] - max(-x1, 0)]

    # One filter for every channel (a grouped convolution). conv2d correlates, so flip for a convolution.
    f = f.to(x.dtype) * (gain ** (f.ndim / 2))
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    else:  # separable: the rows, then the columns
        x = F.conv2d(x, f[None, None, None, :].repeat(c, 1, 1, 1), groups=c)
        x = F.conv2d(x, f[None, None, :, None].repeat(c, 1, 1, 1), groups=c)

    if downx > 1 or downy > 1:
        x = x[:, :, ::downy, ::downx]
    return x


def upsample2d(x: Tensor, f: Tensor | None, up: int | Sequence[int] = 2, padding: Padding = 0,
               flip_filter: bool = False, gain: float = 1.0) -> Tensor:
    """Upsample by ``up`` with the FIR filter ``f``; the output is ``up`` times larger (plus ``padding``)."""
    upx, upy = _pair(up)
    x0, x1, y0, y1 = _padding(padding)
    fw, fh = filter_size(f)
    # Centre the filter on the inserted zeros; the gain keeps the mean brightness (zeros dilute it).
    p = [x0 + (fw + upx - 1) // 2, x1 + (fw - upx) // 2, y0 + (fh + upy - 1) // 2, y1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=(upx, upy), padding=p, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(x: Tensor, f: Tensor | None, down: int | Sequence[int] = 2, padding: Padding = 0,
                 flip_filter: bool = False, gain: float = 1.0) -> Tensor:
    """Low-pass with ``f``, then keep every ``down``-th pixel: the output is ``down`` times smaller."""
    downx, downy = _pair(down)
    x0, x1, y0, y1 = _padding(padding)
    fw, fh = filter_size(f)
    p = [x0 + (fw - downx + 1) // 2, x1 + (fw - downx) // 2, y0 + (fh - downy + 1) // 2, y1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=(downx, downy), padding=p, flip_filter=flip_filter, gain=gain)


def filter2d(x: Tensor, f: Tensor, padding: Padding = 0, flip_filter: bool = False, gain: float = 1.0) -> Tensor:
    """Filter with ``f`` keeping the size (plus ``padding``)."""
    x0, x1, y0, y1 = _padding(padding)
    fw, fh = filter_size(f)
    p = [x0 + fw // 2, x1 + (fw - 1) // 2, y0 + fh // 2, y1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain)
