"""Kernel Inception Distance (Bińkowski et al. 2018), computed by torchmetrics' ``KernelInceptionDistance``.

The unbiased MMD² between real and generated features with the cubic
polynomial kernel k(x, y) = (x·y / d + 1)³, averaged over ``subsets``
random subsets of ``subset_size`` images of each side; value = mean, std =
population std over the subsets. The subsets are drawn from a generator
seeded from ``eval.seed``, never from the training's stream. The row's 95%
interval is a bootstrap of the all-pairs unbiased MMD² (what the subset mean
estimates) over the features (:mod:`gankit.eval.bootstrap`; ``resamples: 0``
turns it off).
"""

from __future__ import annotations

import time

import torch

from gankit.core.errors import GankitError
from gankit.core.registry import component
from gankit.eval import bootstrap
from gankit.eval.errors import EvalError
from gankit.eval.metrics.base import FeatureTap, Metric, Value, implementation, quiet_torchmetrics, seeded


@component("metrics", "kid")
class KID(Metric):
    """Kernel Inception Distance: mean and std of MMD² over random subsets; lower is better."""

    recipe_defaults = {"subset_size": "kid_subset_size", "subsets": "kid_subsets", "resamples": "bootstrap_resamples"}

    def __init__(self, subset_size: int = 1000, subsets: int = 100, resamples: int = 50):
        if subset_size < 2 or subsets < 1:
            raise GankitError(f"kid: subset_size must be >= 2 and subsets >= 1, got {subset_size} and {subsets}")
        if resamples < 0 or resamples == 1:
            raise GankitError(f"kid: resamples must be 0 (no interval) or >= 2, got {resamples}")
        self.subset_size, self.subsets, self.resamples = subset_size, subsets, resamples
        self._metric = None

    def _build(self, d: int):
        from torchmetrics.image.kid import KernelInceptionDistance

        self.tap = FeatureTap(d)
        with quiet_torchmetrics():
            self._metric = KernelInceptionDistance(feature=self.tap, subsets=self.subsets, subset_size=self.subset_size,
                                               reset_real_features=False, sync_on_compute=False)

    def update(self, x, real):
        if self._metric is None:
            self._build(x.shape[1])
        self._metric.update(self.tap.feed(x), real=real)

    def compute(self, seed):
        m = self._metric
        n_real = sum(t.shape[0] for t in m.real_features) if m is not None else 0
        n_fake = sum(t.shape[0] for t in m.fake_features) if m is not None else 0
        available = min(n_real, n_fake)
        if available < 2:
            raise EvalError(f"KID needs at least 2 real and 2 generated images, got {n_real} and {n_fake}")
        size, details = self.subset_size, {}
        if available < size:
            # torchmetrics refuses; adapting (and saying so) keeps small evaluations useful.
            size = available
            details["note"] = (f"kid subset_size {self.subset_size} is more than the {available} images available "
                               f"(the smaller set); using subsets of {available}")
        m.subset_size = size
        with seeded(seed, "kid"), quiet_torchmetrics():
            mean, std = m.compute()
        interval = None
        if self.resamples:
            started = time.perf_counter()
            interval = bootstrap.mmd_interval(torch.cat(m.real_features), torch.cat(m.fake_features), self.resamples,
                                              seed, self.device)
            spent = time.perf_counter() - started
            details.update(bootstrap.details(self.resamples, seed, spent) if interval else {})
        return [Value("kid", float(mean), float(std), {"kid_subset_size": size, "kid_subsets": self.subsets,
                                                       "implementation": implementation("KernelInceptionDistance"),
                                                       **details}, interval)]

    def reset_fake(self):
        if self._metric is not None:
            self._metric.reset()

    def real_state(self):
        if self._metric is None or not self._metric.real_features:
            return None
        return {"real_features": torch.cat(self._metric.real_features)}

    def load_real_state(self, state):
        self._build(state["real_features"].shape[1])
        self._metric.real_features = [state["real_features"].to(torch.float64)]
