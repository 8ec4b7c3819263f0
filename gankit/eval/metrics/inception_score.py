"""Inception Score (Salimans et al. 2016), computed by torchmetrics' ``InceptionScore``.

IS = exp(E_x KL(p(y|x) ‖ p(y))) on Inception's class probabilities of the
generated images, per split (the images shuffled with a seeded generator,
then cut into ``splits`` parts), value = mean over splits, std = their
sample std (torchmetrics'; none with one split); higher is better.
"""

from __future__ import annotations

from gankit.core.errors import GankitError
from gankit.core.registry import component
from gankit.eval.errors import EvalError
from gankit.eval.metrics.base import FeatureTap, Metric, Value, implementation, quiet_torchmetrics, seeded


@component("metrics", "is")
class IS(Metric):
    """Inception Score of the generated images; higher is better."""

    uses = "logits"
    reads_real = False
    higher_is_better = True
    recipe_defaults = {"splits": "is_splits"}

    def __init__(self, splits: int = 10):
        if splits < 1:
            raise GankitError(f"is: splits must be >= 1, got {splits}")
        self.splits = splits
        self._metric = None

    def update(self, x, real):
        if real:
            return  # IS reads generated images only
        if self._metric is None:
            from torchmetrics.image.inception import InceptionScore

            self.tap = FeatureTap(x.shape[1])
            with quiet_torchmetrics():
                self._metric = InceptionScore(feature=self.tap, splits=self.splits, sync_on_compute=False)
        self._metric.update(self.tap.feed(x))

    def compute(self, seed):
        n = sum(t.shape[0] for t in self._metric.features) if self._metric is not None else 0
        if n < 1:
            raise EvalError("IS needs at least 1 generated image")
        splits, details = self.splits, {}
        if n < splits:
            splits = n
            details["note"] = f"is splits {self.splits} is more than the {n} images; using {n} splits"
        self._metric.splits = splits
        with seeded(seed, "is"), quiet_torchmetrics():
            mean, std = self._metric.compute()
        return [Value("is", float(mean), float(std) if splits > 1 else None,
                      {"is_splits": splits, "implementation": implementation("InceptionScore"), **details})]

    def reset_fake(self):
        if self._metric is not None:
            self._metric.reset()
