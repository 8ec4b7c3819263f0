"""Precision, recall, density and coverage (Naeem et al. 2020): four rows ``prdc/<name>``.

torchmetrics has no PRDC; gankit computes it on the same features as FID
(:func:`gankit.eval.prdc.prdc`, k-nearest-neighbour balls in float64).
"""

from __future__ import annotations

import torch

from gankit.core.errors import GankitError
from gankit.core.registry import component
from gankit.eval import prdc
from gankit.eval.metrics.base import Metric, Value


@component("metrics", "prdc")
class PRDC(Metric):
    """Precision, recall, density, coverage with k nearest neighbours (k=5, as the paper)."""

    recipe_defaults = {"k": "prdc_k"}
    higher_is_better = True  # all four: more of the real distribution covered, more realism

    def __init__(self, k: int = 5):
        if k < 1:
            raise GankitError(f"prdc: k must be >= 1, got {k}")
        self.k = k
        self.real: list[torch.Tensor] = []
        self.fake: list[torch.Tensor] = []

    def update(self, x, real):
        (self.real if real else self.fake).append(x)

    def compute(self, seed):
        values = prdc.prdc(torch.cat(self.real), torch.cat(self.fake), self.k)
        return [Value(f"prdc/{name}", v, None, {"prdc_k": self.k, "implementation": "gankit prdc"})
                for name, v in values.items()]

    def reset_fake(self):
        self.fake = []

    def real_state(self):
        return {"real_features": torch.cat(self.real)} if self.real else None

    def load_real_state(self, state):
        self.real = [state["real_features"]]
