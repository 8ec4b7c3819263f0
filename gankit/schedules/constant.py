"""A value that does not change: the same as writing it in the recipe, but schedulable like any other."""

from __future__ import annotations

from gankit.core.registry import component


@component("schedules", "constant")
class Constant:
    """``value`` at every image count."""

    def __init__(self, value: float):
        self.value = float(value)

    def __call__(self, images_seen: float) -> float:
        return self.value
