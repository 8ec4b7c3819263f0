"""The building blocks of ADA (:mod:`gankit.augment.ada`): matrices, wavelet filters, the warp.

- Batched homogeneous matrices: 3 x 3 for pixel coordinates (translate2d,
  scale2d, rotate2d), 4 x 4 for RGB colours (translate3d, scale3d,
  rotate3d). Their entries are numbers or N-vectors (one value per image),
  giving N x 3 x 3 (N x 4 x 4) matrices; with numbers only, one matrix.
- :func:`warp`: resample images through one inverse pixel transform each, as
  the official ADA code (NVlabs/stylegan2-ada-pytorch, ``training/augment.py``)
  does it: reflect-pad, upsample 2x with the sym6 wavelet, bilinear
  ``grid_sample``, low-pass and downsample 2x with the same wavelet.
- :func:`band_filters`: the 4-band filter bank of ADA's image-space filtering.

Coordinates: pixel centres, with the origin at the image centre, x to the
right and y down; an image is W wide and H high.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.nn.resample import downsample2d, setup_filter, upsample2d

# Low-pass taps of the orthogonal Symlet-6 wavelet (the values PyWavelets gives for 'sym6' reconstruction).
SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148]

# Symlet-2 (the same as Daubechies-2, taps reversed): closed form, (1-√3, 3-√3, 3+√3, 1+√3) / (4√2).
_R3 = math.sqrt(3)
SYM2 = [(1 - _R3) / (4 * math.sqrt(2)), (3 - _R3) / (4 * math.sqrt(2)),
        (3 + _R3) / (4 * math.sqrt(2)), (1 + _R3) / (4 * math.sqrt(2))]


def geometry_filter() -> Tensor:
    """The 12-tap sym6 low-pass, normalised to sum 1, as a separable (1-D) filter for upfirdn2d."""
    return setup_filter(SYM6)  # 12 taps: setup_filter keeps it 1-D, run as two passes


# ----------------------------------------------------------------------------------------------------------------
# Batched homogeneous matrices.

def _matrix(rows: list[list], dtype: torch.dtype | None = None, device: torch.device | None = None) -> Tensor:
    """Stack ``rows`` of numbers and N-vectors into N x R x C matrices (R x C when all are numbers)."""
    tensors = [e for row in rows for e in row if isinstance(e, Tensor)]
    if not tensors:
        return torch.tensor(rows, dtype=dtype or torch.float32, device=device)
    like = tensors[0]
    entries = [e.expand_as(like) if isinstance(e, Tensor) else torch.full_like(like, e) for row in rows for e in row]
    return torch.stack(entries, dim=-1).reshape(*like.shape, len(rows), len(rows[0]))


def translate2d(tx, ty, **kw) -> Tensor:
    """(x, y) -> (x + tx, y + ty)."""
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], **kw)


def scale2d(sx, sy, **kw) -> Tensor:
    """(x, y) -> (sx·x, sy·y)."""
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], **kw)


def rotate2d(theta: Tensor) -> Tensor:
    """(x, y) -> (x cos θ - y sin θ, x sin θ + y cos θ): with y pointing down, clockwise on screen."""
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def translate3d(tx, ty, tz) -> Tensor:
    """RGB -> RGB + (tx, ty, tz)."""
    return _matrix([[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]])


def scale3d(sx, sy, sz) -> Tensor:
    """RGB -> (sx·R, sy·G, sz·B)."""
    return _matrix([[sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1]])


def rotate3d(axis: Tensor, theta: Tensor) -> Tensor:
    """Rotation by θ (N-vector) about the unit ``axis`` (4-vector, last entry 0), right-handed.

    Rodrigues: R = cos θ·I + sin θ·[a]x + (1 - cos θ)·a aᵀ, with [a]x the cross-product matrix of a.
    """
    a = axis[:3]
    cross = torch.zeros(3, 3, dtype=a.dtype, device=a.device)
    cross[0, 1], cross[0, 2], cross[1, 2] = -a[2], a[1], -a[0]
    cross = cross - cross.T
    c, s = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    r = c * torch.eye(3, dtype=a.dtype, device=a.device) + s * cross + (1 - c) * torch.outer(a, a)
    out = torch.eye(4, dtype=a.dtype, device=a.device).repeat(theta.shape[0], 1, 1)
    out[:, :3, :3] = r
    return out


# ----------------------------------------------------------------------------------------------------------------
# The geometric warp.

def warp(images: Tensor, inverse: Tensor, hz: Tensor) -> Tensor:
    """Resample each image of N x C x H x W ``images`` through its N x 3 x 3 ``inverse`` transform.

    ``inverse`` maps an output pixel to where it is read from in the input
    (centred pixel coordinates). ``hz`` is the 1-D wavelet low-pass
    (:func:`geometry_filter`). Steps, as in the official code:

    1. reflect-pad by as much as the transformed corners (plus the filter's
       reach) need, over the whole batch, at most H-1 / W-1 per side;
    2. upsample 2x with ``hz``, so bilinear sampling runs on a band-limited
       image and aliases less;
    3. ``grid_sample`` (bilinear, zeros outside) into a 2(H + 2r) x 2(W + 2r)
       canvas, r = len(hz) / 4;
    4. low-pass with ``hz``, downsample 2x and crop the border r away.
    """
    n, c, h, w = images.shape
    kw = dict(dtype=images.dtype, device=images.device)
    reach = hz.shape[0] // 4  # r: half the filter's support, in pixels of the original image
    cx, cy = (w - 1) / 2, (h - 1) / 2

    # 1. Where the output's corners come from; pad each side enough for the farthest one (reflect allows < W, H).
    corners = torch.tensor([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1]], **kw)  # 3 x 4
    src = inverse @ corners  # N x 3 x 4
    xs, ys = src[:, 0].flatten(), src[:, 1].flatten()
    # How far past each edge (left, right, top, bottom) the farthest corner reads, plus the filter's reach.
    need = torch.stack([(-xs).max() - cx, xs.max() - cx, (-ys).max() - cy, ys.max() - cy]) + 2 * reach
    limit = torch.tensor([w - 1, w - 1, h - 1, h - 1], **kw)
    x0, x1, y0, y1 = need.clamp(min=0).minimum(limit).ceil().to(torch.int64).tolist()
    images = F.pad(images, [x0, x1, y0, y1], mode="reflect")
    # The padded image's centre is ((x0 - x1) / 2, (y0 - y1) / 2) away from the original's.
    inverse = translate2d((x0 - x1) / 2, (y0 - y1) / 2, **kw) @ inverse

    # 2. Upsample: coordinates double. sym6 is not symmetric (its taps' centre of mass is at ~5.1, not the 5.5
    #    that upsample2d's padding centres), so the 2x image sits about half of its pixels off; conjugating
    #    with a half-pixel shift puts the transform's pivot back on the content's centre (the official
    #    convention; without it a flip or a quarter turn also shifts the image).
    images = upsample2d(images, hz.to(images.dtype), up=2)
    inverse = scale2d(2, 2, **kw) @ inverse @ scale2d(0.5, 0.5, **kw)
    inverse = translate2d(-0.5, -0.5, **kw) @ inverse @ translate2d(0.5, 0.5, **kw)

    # 3. Sample. affine_grid works in [-1, 1] units (align_corners=False): x_norm = 2·x_centred / width.
    out_h, out_w = 2 * (h + 2 * reach), 2 * (w + 2 * reach)
    in_h, in_w = images.shape[2], images.shape[3]
    inverse = scale2d(2 / in_w, 2 / in_h, **kw) @ inverse @ scale2d(out_w / 2, out_h / 2, **kw)
    grid = F.affine_grid(inverse[:, :2, :], [n, c, out_h, out_w], align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # 4. Back to H x W: low-pass (the filter as correlation, mirroring step 2), keep every other pixel, crop r.
    return downsample2d(images, hz.to(images.dtype), down=2, padding=-2 * reach, flip_filter=True)


# ----------------------------------------------------------------------------------------------------------------
# The filter bank of image-space filtering.

def _convolve_rows(rows: Tensor, taps: Tensor) -> Tensor:
    """Full 1-D convolution of each row of ``rows`` (R x L) with ``taps`` (K): R x (L + K - 1)."""
    out = rows.new_zeros(rows.shape[0], rows.shape[1] + taps.shape[0] - 1)
    for k, t in enumerate(taps):
        out[:, k:k + rows.shape[1]] += t * rows
    return out


def band_filters(num_bands: int = 4) -> Tensor:
    """A bank of ``num_bands`` symmetric 1-D filters (rows, lowest band first) that sum to a unit impulse.

    From the sym2 wavelet's low-pass H(z) and high-pass H(-z): the half-band
    pair lo = H(z)H(z⁻¹)/2 and hi = H(-z)H(-z⁻¹)/2 satisfy lo + hi = δ
    (the wavelet is orthogonal). Splitting the low band again and again
    (each time with the filters dilated by 2) gives the bands, from high
    to low: hi(z); hi(z²)lo(z); hi(z⁴)lo(z²)lo(z); lo(z⁴)lo(z²)lo(z).
    For 4 bands: 4 x 43 taps.
    """
    lo = torch.tensor(SYM2, dtype=torch.float64)
    hi = lo * (-1.0) ** torch.arange(lo.shape[0])  # H(-z): alternate signs
    lo2 = _convolve_rows(lo[None], lo.flip(0))[0] / 2
    hi2 = _convolve_rows(hi[None], hi.flip(0))[0] / 2
    bank = torch.zeros(num_bands, 1, dtype=torch.float64)
    bank[0, 0] = 1  # one band holding everything
    for i in range(1, num_bands):
        # Dilate every band by 2 (a zero between taps), then split the low band's content with lo, adding hi as band i.
        dilated = bank.new_zeros(num_bands, 2 * bank.shape[1] - 1)
        dilated[:, ::2] = bank
        bank = _convolve_rows(dilated, lo2)
        mid = (bank.shape[1] - hi2.shape[0]) // 2
        bank[i, mid:mid + hi2.shape[0]] += hi2
    return bank.float()
