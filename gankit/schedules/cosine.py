"""Cosine decay with warm-up and hold: R3GAN's schedule for every hyperparameter it anneals.

The authors' ``cosine_decay_with_warmup`` (brownvc/R3GAN,
``training/training_loop.py``): with n the images seen,

    decay(n) = ½ (1 + cos(π (n − warmup − hold) / (total − warmup − hold)))
    value(n) = base + (1 − decay(n)) (final − base)

held at ``base_value`` until warm-up + hold images, rising linearly from
``warmup_value`` during the first ``warmup_nimg`` images, and ``final_value``
once ``total_nimg`` images are past.
"""

from __future__ import annotations

import math

from gankit.core.errors import GankitError
from gankit.core.registry import component


@component("schedules", "cosine")
class Cosine:
    """``base_value`` to ``final_value`` along half a cosine over ``total_nimg`` images (see module doc)."""

    def __init__(self, base_value: float, total_nimg: float, final_value: float = 0.0, warmup_value: float = 0.0,
                 warmup_nimg: float = 0.0, hold_nimg: float = 0.0):
        if not total_nimg > warmup_nimg + hold_nimg or min(warmup_nimg, hold_nimg) < 0:
            raise GankitError(f"cosine schedule: total_nimg ({total_nimg}) must be above warmup_nimg + hold_nimg "
                              f"({warmup_nimg} + {hold_nimg}), both >= 0")
        self.base, self.final, self.total = float(base_value), float(final_value), float(total_nimg)
        self.warmup_value, self.warmup, self.hold = float(warmup_value), float(warmup_nimg), float(hold_nimg)

    def __call__(self, images_seen: float) -> float:
        n = float(images_seen)
        if n > self.total:
            return self.final
        if self.warmup > 0 and n < self.warmup:
            return (self.base - self.warmup_value) / self.warmup * n + self.warmup_value
        if self.hold > 0 and n <= self.warmup + self.hold:
            return self.base
        decay = 0.5 * (1 + math.cos(math.pi * (n - self.warmup - self.hold) / (self.total - self.warmup - self.hold)))
        return self.base + (1 - decay) * (self.final - self.base)
