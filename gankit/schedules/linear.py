"""A straight line from one value to another: SNGAN's learning-rate decay (Miyato et al. 2018)."""

from __future__ import annotations

from gankit.core.errors import GankitError
from gankit.core.registry import component


@component("schedules", "linear")
class Linear:
    """``base_value`` until ``start_nimg`` images, then linearly to ``final_value`` at ``total_nimg``, then that.

    SNGAN decays Adam's learning rate linearly to 0 over the whole run:
    ``{name: linear, base_value: 2e-4, final_value: 0, total_nimg: <images of the run>}``.
    """

    def __init__(self, base_value: float, total_nimg: float, final_value: float = 0.0, start_nimg: float = 0.0):
        if not total_nimg > start_nimg >= 0:
            raise GankitError(f"linear schedule: total_nimg must be above start_nimg >= 0, got {total_nimg} and "
                              f"{start_nimg}")
        self.base, self.final = float(base_value), float(final_value)
        self.start, self.total = float(start_nimg), float(total_nimg)

    def __call__(self, images_seen: float) -> float:
        if images_seen <= self.start:
            return self.base
        if images_seen >= self.total:
            return self.final
        t = (images_seen - self.start) / (self.total - self.start)
        return self.base + t * (self.final - self.base)
