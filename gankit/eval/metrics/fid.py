"""Fréchet Inception Distance (Heusel et al. 2017), computed by torchmetrics' ``FrechetInceptionDistance``.

FID = ‖μ_r − μ_f‖² + tr Σ_r + tr Σ_f − 2 tr √(Σ_r Σ_f), the distance between
Gaussians fitted to the real and generated features; lower is better.
torchmetrics keeps the sums in float64; its reference side (the feature sum,
the sum of outer products and the count) is what the cache stores.
"""

from __future__ import annotations

from gankit.core.registry import component
from gankit.eval.errors import EvalError
from gankit.eval.metrics.base import FeatureTap, Metric, Value, implementation

REAL_STATES = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")


@component("metrics", "fid")
class FID(Metric):
    """Fréchet Inception Distance; lower is better."""

    def __init__(self):
        self._metric = None  # built on the first batch: the feature size is known then

    def _build(self, d: int):
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.tap = FeatureTap(d)
        self._metric = FrechetInceptionDistance(feature=self.tap, reset_real_features=False, sync_on_compute=False)

    def update(self, x, real):
        if self._metric is None:
            self._build(x.shape[1])
        self._metric.update(self.tap.feed(x), real=real)

    def compute(self, seed):
        m = self._metric
        for side in ("real", "fake"):
            n = 0 if m is None else int(getattr(m, f"{side}_features_num_samples"))
            if n < 2:
                what = "real" if side == "real" else "generated"
                raise EvalError(f"FID needs at least 2 {what} images (a covariance), got {n}")
        return [Value("fid", float(m.compute()), None, {"implementation": implementation("FrechetInceptionDistance")})]

    def reset_fake(self):
        if self._metric is not None:
            self._metric.reset()  # reset_real_features=False: only the generated side is cleared

    def real_state(self):
        return None if self._metric is None else {k: getattr(self._metric, k).clone() for k in REAL_STATES}

    def load_real_state(self, state):
        self._build(state["real_features_sum"].shape[0])
        for key in REAL_STATES:
            setattr(self._metric, key, state[key].clone())
