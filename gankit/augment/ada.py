"""Adaptive discriminator augmentation's pipeline (Karras et al. 2020, "Training Generative
Adversarial Networks with Limited Data"; NVlabs/stylegan2-ada-pytorch ``training/augment.py``).

    aug = ADAugment("bgc")                 # the paper's pipeline; p = 0 (identity) until set
    aug.p = 0.2                            # an AdaptiveP controller or a schedule sets it between steps
    D(aug(real, generator=g)), D(aug(fake, generator=g))

Each transform is applied to each image with probability p × its multiplier
(the preset's 1 or a value you give), always in this order:

- ``b`` (pixel blitting): ``xflip`` (mirror x), ``rotate90`` (k·90°, k
  uniform in 0..3), ``xint`` (integer shift, uniform within ±``xint_max`` of
  the size, rounded);
- ``g`` (general geometry): ``scale`` (isotropic, 2^N(0, scale_std²)),
  ``rotate`` (uniform within ±``rotate_max``·π, before and after the
  anisotropic scaling, each with probability 1 - √(1 - p·mult), so that at
  least one happens with p·mult), ``aniso`` (x by s, y by 1/s, s =
  2^N(0, aniso_std²)), ``xfrac`` (shift by N(0, xfrac_std²) of the size).
  ``b`` and ``g`` make one pixel transform per image, applied once
  (:func:`gankit.augment.geometry.warp`: reflect padding, sym6-wavelet 2x
  upsampling, bilinear sampling, downsampling);
- ``c`` (colour, one 4 x 4 matrix on homogeneous RGB per image):
  ``brightness`` (add N(0, brightness_std²)), ``contrast`` (multiply by
  2^N(0, contrast_std²), about 0, the mid-grey of [-1, 1]), ``lumaflip``
  (negate the luma component, c - 2(c·v)v with v = (1, 1, 1)/√3, with
  probability ½ when chosen), ``hue`` (rotate about v by uniform
  ±``hue_max``·π), ``saturation`` (scale the part orthogonal to v by
  2^N(0, saturation_std²));
- ``f``: ``imgfilter``, amplify 4 frequency bands (each with probability
  p × imgfilter × its ``imgfilter_bands`` entry) by 2^N(0, imgfilter_std²),
  normalised to keep the expected power of a 1/f spectrum (a 43-tap filter,
  reflect-padded: images must be larger than 21 x 21);
- ``n``: ``noise``, add N(0, σ²) noise with σ = |N(0, noise_std²)|;
- ``cutout``: zero a rectangle of ``cutout_size`` of the width and height,
  centred uniformly in the image.

Grey images (C = 1) are read as R = G = B: the colour matrix is applied and
the three outputs averaged, so brightness, contrast and luma flip (which
negates the grey value) act; hue and saturation do nothing on grey and are
skipped without drawing, as in the official code. Colour needs C of 1 or 3.

Randomness: every number is drawn from ``generator`` when one is passed (a
CPU generator works for images on any device: draws are made on its device
and moved; a :class:`gankit.augment.draws.ReplayedDraws` hands out draws
given in advance), otherwise from the global generator of the images'
device, in the official code's order and shapes (so with the global
generator seeded alike the draws are the official ones, and so, to float
rounding, is the output): per transform, its value(s) and then the uniform
that decides whether it applies; noise draws its field last; cutout draws
the decision first and then the centre.

As in the official code, once any geometric transform is enabled (and p > 0)
every image goes through the warp, also those whose draws are all identity
(it is the identity to ~1e-6). Flips and quarter turns are not exact pixel
permutations: sym6 is asymmetric, so a mirrored image rings by a few per
cent at high frequencies; integer shifts are exact.

p = 0 makes every draw, as the official code does (so replayed draws stay
aligned whatever p is), and returns the input itself: every gate is closed
(the official code still warps it by the identity, ±3e-6). p > 1 is
accepted, as the official controller can produce it: each chance p × mult
then saturates at 1. Images are processed in float32 at least (half inputs
are converted and returned in their own dtype). Differentiable in the input
to any order (R1 through the augmentation).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.augment.draws import draw as draw_from
from gankit.augment.geometry import (band_filters, geometry_filter, rotate2d, rotate3d, scale2d, scale3d,
                                     translate2d, translate3d, warp)
from gankit.core.errors import GankitError, suggestion

GROUPS = {
    "b": ("xflip", "rotate90", "xint"),
    "g": ("scale", "rotate", "aniso", "xfrac"),
    "c": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
    "f": ("imgfilter",),
    "n": ("noise",),
    "cutout": ("cutout",),
}
MULTIPLIERS = tuple(name for names in GROUPS.values() for name in names)
GEOMETRIC = GROUPS["b"] + GROUPS["g"]

# The official train.py's --augpipe choices (blit, geom, color, filter, noise, cutout, bg, bgc ... bgcfnc), the
# one-letter forms of its groups, 'gc', and 'none' (everything off: set the multipliers you want).
PRESETS = {
    "none": (), "b": ("b",), "g": ("g",), "c": ("c",), "f": ("f",), "n": ("n",),
    "bg": ("b", "g"), "gc": ("g", "c"), "bgc": ("b", "g", "c"),
    "bgcf": ("b", "g", "c", "f"), "bgcfn": ("b", "g", "c", "f", "n"), "bgcfnc": ("b", "g", "c", "f", "n", "cutout"),
    "blit": ("b",), "geom": ("g",), "color": ("c",), "filter": ("f",), "noise": ("n",), "cutout": ("cutout",),
}

_EXPECTED_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)  # of the 4 bands, for a 1/f spectrum (official values)


class _Draws:
    """One call's random numbers: float32 draws from ``source`` (see :mod:`gankit.augment.draws`), then cast."""

    def __init__(self, source, device: torch.device, dtype: torch.dtype):
        self.source, self.device, self.dtype = source, device, dtype

    def uniform(self, *shape: int) -> Tensor:
        return draw_from(self.source, "uniform", shape, self.device).to(self.dtype)  # U[0, 1)

    def normal(self, *shape: int) -> Tensor:
        return draw_from(self.source, "normal", shape, self.device).to(self.dtype)  # N(0, 1)

    def gate(self, value: Tensor, chance: float, identity: float) -> Tensor:
        """``value`` where a fresh U[0, 1) per image is below ``chance``, else ``identity`` (value: N or N x k)."""
        chosen = self.uniform(value.shape[0]) < chance
        chosen = chosen.reshape(chosen.shape + (1,) * (value.dim() - 1))
        return torch.where(chosen, value, torch.full_like(value, identity))


def _check(name: str, value, low: float = 0.0, high: float = math.inf) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise GankitError(f"augment.{name} must be a number, got {value!r}") from None
    if not (low <= value <= high and math.isfinite(value)):
        where = f"between {low:g} and {high:g}" if high < math.inf else f"at least {low:g}"
        raise GankitError(f"augment.{name} must be {where}, got {value!r}")
    return value


class ADAugment:
    """ADA's augmentation pipeline: ``preset`` chooses the transforms (``'bgc'``, the paper's),
    keyword multipliers override each one's probability factor, ``p`` scales them all (see module doc)."""

    def __init__(self, preset: str = "bgc", p: float = 0.0, *,
                 xflip: float | None = None, rotate90: float | None = None, xint: float | None = None,
                 scale: float | None = None, rotate: float | None = None, aniso: float | None = None,
                 xfrac: float | None = None, brightness: float | None = None, contrast: float | None = None,
                 lumaflip: float | None = None, hue: float | None = None, saturation: float | None = None,
                 imgfilter: float | None = None, noise: float | None = None, cutout: float | None = None,
                 xint_max: float = 0.125, scale_std: float = 0.2, rotate_max: float = 1.0, aniso_std: float = 0.2,
                 xfrac_std: float = 0.125, brightness_std: float = 0.2, contrast_std: float = 0.5,
                 hue_max: float = 1.0, saturation_std: float = 1.0,
                 imgfilter_bands: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0), imgfilter_std: float = 1.0,
                 noise_std: float = 0.1, cutout_size: float = 0.5):
        if preset not in PRESETS:
            raise GankitError(f"augment.preset: {preset!r} is not an ADA preset{suggestion(str(preset), PRESETS)} "
                              f"(choose from {', '.join(PRESETS)})")
        self.preset = preset
        given = dict(xflip=xflip, rotate90=rotate90, xint=xint, scale=scale, rotate=rotate, aniso=aniso, xfrac=xfrac,
                     brightness=brightness, contrast=contrast, lumaflip=lumaflip, hue=hue, saturation=saturation,
                     imgfilter=imgfilter, noise=noise, cutout=cutout)
        on = {name for group in PRESETS[preset] for name in GROUPS[group]}
        # Probability multipliers: the preset's 1 (or 0), unless given.
        self.multipliers = {name: (float(name in on) if given[name] is None else _check(name, given[name]))
                            for name in MULTIPLIERS}
        self.xint_max = _check("xint_max", xint_max)
        self.scale_std = _check("scale_std", scale_std)
        self.rotate_max = _check("rotate_max", rotate_max)
        self.aniso_std = _check("aniso_std", aniso_std)
        self.xfrac_std = _check("xfrac_std", xfrac_std)
        self.brightness_std = _check("brightness_std", brightness_std)
        self.contrast_std = _check("contrast_std", contrast_std)
        self.hue_max = _check("hue_max", hue_max)
        self.saturation_std = _check("saturation_std", saturation_std)
        bands = list(imgfilter_bands) if isinstance(imgfilter_bands, (list, tuple)) else None
        if bands is None or len(bands) != 4:
            raise GankitError(f"augment.imgfilter_bands must be 4 multipliers (lowest band first), "
                              f"got {imgfilter_bands!r}")
        self.imgfilter_bands = [_check("imgfilter_bands", b) for b in bands]
        self.imgfilter_std = _check("imgfilter_std", imgfilter_std)
        self.noise_std = _check("noise_std", noise_std)
        self.cutout_size = _check("cutout_size", cutout_size, high=1.0)
        self.p = p
        self._hz_geom = geometry_filter()
        self._bank = band_filters()  # 4 x 43

    @property
    def p(self) -> float:
        """The overall probability factor; 0 is the identity."""
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        value = float(value)  # a 0-d tensor works too
        if not (value >= 0 and math.isfinite(value)):
            raise GankitError(f"augment.p must be a finite number of at least 0, got {value!r}")
        self._p = value

    def __call__(self, x: Tensor, generator=None) -> Tensor:
        """Augmented images (N x C x H x W, same dtype), differentiable in ``x``; draws from ``generator``
        (a torch.Generator, a :class:`~gankit.augment.draws.ReplayedDraws`, or None: the global stream)."""
        if x.dim() != 4:
            raise ValueError(f"ADAugment expects images N x C x H x W, got shape {tuple(x.shape)}")
        if not any(self.multipliers.values()):
            return x  # exactly the identity, and no draws
        n, c, h, w = x.shape
        dtype = torch.promote_types(x.dtype, torch.float32)
        draw = _Draws(generator, x.device, dtype)
        # Every draw first, in the official order (applying a transform draws nothing).
        inverse = self._pixel_transform(draw, n, h, w)
        colour = self._colour_matrix(draw, n, c)
        gains = self._filter_gains(draw, n, h, w) if self.multipliers["imgfilter"] > 0 else None
        noise = None
        if self.multipliers["noise"] > 0:
            sigma = draw.gate(draw.normal(n).abs() * self.noise_std, self._chance("noise"), 0.0)
            noise = draw.normal(n, c, h, w) * sigma.reshape(n, 1, 1, 1)
        mask = self._cutout_mask(draw, n, h, w) if self.multipliers["cutout"] > 0 else None
        if self.p == 0:
            return x  # every gate closed: exactly the identity

        y = x.to(dtype)
        if inverse is not None:
            y = warp(y, inverse, self._hz_geom.to(x.device))
        if colour is not None:
            y = _apply_colour(y, colour)
        if gains is not None:
            y = self._filter_bands(y, gains)
        if noise is not None:
            y = y + noise
        if mask is not None:
            y = y * mask
        return y.to(x.dtype)

    def _chance(self, name: str) -> float:
        return self.multipliers[name] * self.p

    def _pixel_transform(self, draw: _Draws, n: int, h: int, w: int) -> Tensor | None:
        """N x 3 x 3: output pixel -> the input pixel it reads (the inverse of the images' transform), or None."""
        m = self.multipliers
        if not any(m[name] > 0 for name in GEOMETRIC):
            return None
        # Composing inverses on the right: inv = inv_1 @ inv_2 @ ... means the image undergoes 1 first, then 2, ...
        inv = torch.eye(3, dtype=draw.dtype, device=draw.device)
        if m["xflip"] > 0:
            flip = draw.gate(torch.floor(draw.uniform(n) * 2), self._chance("xflip"), 0.0)  # 0 or 1
            inv = inv @ scale2d(1 - 2 * flip, 1)  # x -> -x is its own inverse
        if m["rotate90"] > 0:
            k = draw.gate(torch.floor(draw.uniform(n) * 4), self._chance("rotate90"), 0.0)  # quarter turns
            inv = inv @ rotate2d(math.pi / 2 * k)  # the image turns by -k·90° (torch.rot90(x, k) on screen)
        if m["xint"] > 0:
            t = draw.gate((draw.uniform(n, 2) * 2 - 1) * self.xint_max, self._chance("xint"), 0.0)
            inv = inv @ translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))
        if m["scale"] > 0:
            s = draw.gate(torch.exp2(draw.normal(n) * self.scale_std), self._chance("scale"), 1.0)
            inv = inv @ scale2d(1 / s, 1 / s)
        # Two rotations, each with chance q: P(at least one) = 1 - (1 - q)² = p·rotate.
        q = 1 - math.sqrt(min(max(1 - self._chance("rotate"), 0.0), 1.0))
        if m["rotate"] > 0:
            theta = draw.gate((draw.uniform(n) * 2 - 1) * math.pi * self.rotate_max, q, 0.0)
            inv = inv @ rotate2d(theta)  # before the anisotropic scaling
        if m["aniso"] > 0:
            s = draw.gate(torch.exp2(draw.normal(n) * self.aniso_std), self._chance("aniso"), 1.0)
            inv = inv @ scale2d(1 / s, s)
        if m["rotate"] > 0:
            theta = draw.gate((draw.uniform(n) * 2 - 1) * math.pi * self.rotate_max, q, 0.0)
            inv = inv @ rotate2d(theta)  # after it
        if m["xfrac"] > 0:
            t = draw.gate(draw.normal(n, 2) * self.xfrac_std, self._chance("xfrac"), 0.0)
            inv = inv @ translate2d(-t[:, 0] * w, -t[:, 1] * h)
        return inv

    def _colour_matrix(self, draw: _Draws, n: int, c: int) -> Tensor | None:
        """N x 4 x 4 on homogeneous RGB (applied on the left: later transforms multiply from the left), or None."""
        m = self.multipliers
        rgb = c > 1  # hue and saturation only exist in colour
        if not any(m[name] > 0 for name in ("brightness", "contrast", "lumaflip")) and \
                not (rgb and (m["hue"] > 0 or m["saturation"] > 0)):
            return None
        if c not in (1, 3):
            raise GankitError(f"ADA's colour transforms need grey (1) or RGB (3) channels, got {c}; "
                              f"use a preset without 'c' (e.g. 'bg')")
        eye = torch.eye(4, dtype=draw.dtype, device=draw.device)
        luma = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=draw.dtype, device=draw.device) / math.sqrt(3)
        onto_luma = torch.outer(luma, luma)  # v vᵀ: projection onto the grey axis
        mat = eye
        if m["brightness"] > 0:
            b = draw.gate(draw.normal(n) * self.brightness_std, self._chance("brightness"), 0.0)
            mat = translate3d(b, b, b) @ mat
        if m["contrast"] > 0:
            k = draw.gate(torch.exp2(draw.normal(n) * self.contrast_std), self._chance("contrast"), 1.0)
            mat = scale3d(k, k, k) @ mat
        if m["lumaflip"] > 0:
            flip = draw.gate(torch.floor(draw.uniform(n) * 2), self._chance("lumaflip"), 0.0)
            mat = (eye - 2 * onto_luma * flip[:, None, None]) @ mat  # Householder reflection across the luma plane
        if rgb and m["hue"] > 0:
            theta = draw.gate((draw.uniform(n) * 2 - 1) * math.pi * self.hue_max, self._chance("hue"), 0.0)
            mat = rotate3d(luma, theta) @ mat
        if rgb and m["saturation"] > 0:
            s = draw.gate(torch.exp2(draw.normal(n) * self.saturation_std), self._chance("saturation"), 1.0)
            mat = (onto_luma + (eye - onto_luma) * s[:, None, None]) @ mat
        return mat

    def _filter_gains(self, draw: _Draws, n: int, h: int, w: int) -> Tensor:
        """N x 4: each image's gains of the 4 frequency bands."""
        pad = self._bank.shape[1] // 2
        if min(h, w) <= pad:
            raise GankitError(f"ADA's imgfilter needs images larger than {pad} x {pad} pixels, got {h} x {w}; "
                              f"set imgfilter: 0 or use a preset without 'f'")
        power = torch.tensor(_EXPECTED_POWER, dtype=draw.dtype, device=draw.device)
        gains = torch.ones(n, 4, dtype=draw.dtype, device=draw.device)
        for band, strength in enumerate(self.imgfilter_bands):
            t = draw.gate(torch.exp2(draw.normal(n) * self.imgfilter_std), self._chance("imgfilter") * strength, 1.0)
            # This band's gain with the others at 1, scaled so a 1/f spectrum keeps its expected power.
            vec = torch.ones(n, 4, dtype=draw.dtype, device=draw.device)
            vec[:, band] = t
            gains = gains * vec / (power * vec.square()).sum(dim=1, keepdim=True).sqrt()
        return gains

    def _filter_bands(self, y: Tensor, gains: Tensor) -> Tensor:
        """Amplify the 4 frequency bands by ``gains`` (N x 4): one separable filter per image, reflect-padded."""
        n, c, h, w = y.shape
        bank = self._bank.to(y.device, y.dtype)  # 4 x taps; rows sum to an impulse, so all-ones gains = identity
        pad = bank.shape[1] // 2
        taps = (gains.to(y.dtype) @ bank).repeat_interleave(c, dim=0)  # (N·C) x taps: a filter per image and channel
        # One grouped convolution over all images: rows, then columns (the filters are symmetric).
        flat = F.pad(y.reshape(1, n * c, h, w), [pad, pad, pad, pad], mode="reflect")
        flat = F.conv2d(flat, taps[:, None, None, :], groups=n * c)
        flat = F.conv2d(flat, taps[:, None, :, None], groups=n * c)
        return flat.reshape(n, c, h, w)

    def _cutout_mask(self, draw: _Draws, n: int, h: int, w: int) -> Tensor:
        """N x 1 x H x W: 0 inside each chosen image's rectangle, 1 elsewhere."""
        size = draw.gate(torch.full((n,), self.cutout_size, dtype=draw.dtype, device=draw.device),
                         self._chance("cutout"), 0.0)
        centre = draw.uniform(n, 2)  # (x, y) in units of the width and height
        xs = (torch.arange(w, dtype=draw.dtype, device=draw.device) + 0.5) / w  # pixel centres
        ys = (torch.arange(h, dtype=draw.dtype, device=draw.device) + 0.5) / h
        out_x = (xs[None, :] - centre[:, :1]).abs() >= size[:, None] / 2  # N x W
        out_y = (ys[None, :] - centre[:, 1:]).abs() >= size[:, None] / 2  # N x H
        return (out_x[:, None, :] | out_y[:, :, None]).to(draw.dtype)[:, None]

    def __repr__(self) -> str:
        on = {name for group in PRESETS[self.preset] for name in GROUPS[group]}
        changed = [f"{k}={v:g}" for k, v in self.multipliers.items() if v != float(k in on)]
        return f"ADAugment(preset={self.preset!r}, p={self.p:g}{''.join(', ' + s for s in changed)})"


def _apply_colour(y: Tensor, mat: Tensor) -> Tensor:
    """Apply N x 4 x 4 colour matrices to RGB or grey images (grey: R = G = B in, the mean of R, G, B out)."""
    n, c, h, w = y.shape
    flat = y.reshape(n, c, h * w)
    if c == 3:
        flat = mat[:, :3, :3] @ flat + mat[:, :3, 3:]
    else:
        rows = mat[:, :3, :].mean(dim=1, keepdim=True)  # N x 1 x 4: the average output channel
        flat = flat * rows[:, :, :3].sum(dim=2, keepdim=True) + rows[:, :, 3:]
    return flat.reshape(n, c, h, w)
