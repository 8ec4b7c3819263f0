"""Fréchet Inception Distance (Heusel et al. 2017), computed by torchmetrics' ``FrechetInceptionDistance``.

FID = ‖μ_r − μ_f‖² + tr Σ_r + tr Σ_f − 2 tr √(Σ_r Σ_f), the distance between
Gaussians fitted to the real and generated features; lower is better.
torchmetrics keeps the sums in float64; its reference side (the feature sum,
the sum of outer products and the count) is what the cache stores. The row's
95% interval is a bootstrap over the features themselves, which this metric
keeps beside the sums (:mod:`gankit.eval.bootstrap`; ``resamples: 0`` turns it off).
"""

from __future__ import annotations

import time

import torch

from gankit.core.errors import GankitError
from gankit.core.registry import component
from gankit.eval import bootstrap
from gankit.eval.errors import EvalError
from gankit.eval.metrics.base import FeatureTap, Metric, Value, implementation

REAL_STATES = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")


class Frechet(Metric):
    """The Fréchet distance between Gaussians fitted to real and generated features, through torchmetrics;
    lower is better. Subclasses name the value and the extractor (FID: eval.feature_extractor)."""

    value_name = "fid"
    recipe_defaults = {"resamples": "bootstrap_resamples"}

    def __init__(self, resamples: int = 50):
        if resamples < 0 or resamples == 1:
            raise GankitError(f"{self.value_name}: resamples must be 0 (no interval) or >= 2, got {resamples}")
        self.resamples = resamples
        self._metric = None  # built on the first batch: the feature size is known then
        self.real: list[torch.Tensor] = []  # the features themselves, for the interval
        self.fake: list[torch.Tensor] = []

    def _build(self, d: int):
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.tap = FeatureTap(d)
        self._metric = FrechetInceptionDistance(feature=self.tap, reset_real_features=False, sync_on_compute=False)

    def update(self, x, real):
        if self._metric is None:
            self._build(x.shape[1])
        self._metric.update(self.tap.feed(x), real=real)
        if self.resamples:
            (self.real if real else self.fake).append(x)

    def compute(self, seed):
        m = self._metric
        for side in ("real", "fake"):
            n = 0 if m is None else int(getattr(m, f"{side}_features_num_samples"))
            if n < 2:
                what = "real" if side == "real" else "generated"
                raise EvalError(f"{self.value_name.upper()} needs at least 2 {what} images (a covariance), got {n}")
        details, interval = {"implementation": implementation("FrechetInceptionDistance")}, None
        if self.resamples and self.real and self.fake:
            started = time.perf_counter()
            interval = bootstrap.frechet_interval(torch.cat(self.real), torch.cat(self.fake), self.resamples, seed,
                                                  self.device)
            spent = time.perf_counter() - started
            details.update(bootstrap.details(self.resamples, seed, spent) if interval else {})
        return [Value(self.value_name, float(m.compute()), None, details, interval)]

    def reset_fake(self):
        self.fake = []
        if self._metric is not None:
            self._metric.reset()  # reset_real_features=False: only the generated side is cleared

    def real_state(self):
        return None if self._metric is None else {k: getattr(self._metric, k).clone() for k in REAL_STATES}

    def load_real_state(self, state):
        self._build(state["real_features_sum"].shape[0])
        for key in REAL_STATES:
            setattr(self._metric, key, state[key].clone())

    def take_real_features(self, features):
        if self.resamples:
            self.real = [features]


@component("metrics", "fid")
class FID(Frechet):
    """Fréchet Inception Distance with its 95% bootstrap interval; lower is better."""
