"""Per-class FID (StudioGAN's intra-class FID): FID within each class, against that class's real images.

For a class-conditional generator, image i of an evaluation is generated for class i mod C
(:class:`gankit.eval.engine.GeneratedImages`), and each reference image carries its dataset label.
For every class c with at least 2 images on both sides, FID_c is the Fréchet distance between the
Gaussians fitted (float64 mean, n - 1 covariance, as torchmetrics) to class c's real and generated
features (:func:`gankit.eval.bootstrap.frechet_weighted` in float64 throughout, which agrees with
torchmetrics' FID to rounding and is cheaper per class: classes usually have fewer images than the
features have dimensions). Two rows: ``fid_per_class`` (the mean over classes, every class's value in
``per_class``) and ``fid_per_class/worst`` (the largest, its class in ``class``). Lower is better.
Both carry a 95% bootstrap interval (``resamples``, default ``eval.bootstrap_resamples``): each class's
real and generated features resampled within the class, the mean and the largest of the classes' FIDs
recomputed per resample (the worst class may change between resamples: the interval is the worst's,
whichever class it is).

A generator that ignores its label draws every class's images from the whole distribution: its
overall FID can be good while each class's is poor, which this exposes. The features are the ones
extracted for ``fid`` (the same extractor, one pass). Per-class FIDs come from fewer images than the
overall FID and are biased upward accordingly: compare them across runs with the same budget
(``budget_name``), not with the overall FID of a perfect model.
"""

from __future__ import annotations

import time

import torch

from gankit.core.errors import GankitError
from gankit.core.registry import component
from gankit.eval import bootstrap
from gankit.eval.bootstrap import frechet_weighted
from gankit.eval.errors import EvalError
from gankit.eval.metrics.base import Metric, Value


@component("metrics", "fid_per_class")
class FIDPerClass(Metric):
    """FID within each class (StudioGAN's intra-FID): mean and worst over classes; lower is better."""

    needs_labels = True
    recipe_defaults = {"resamples": "bootstrap_resamples"}

    def __init__(self, resamples: int = 50):
        if resamples < 0 or resamples == 1:
            raise GankitError(f"fid_per_class: resamples must be 0 (no interval) or >= 2, got {resamples}")
        self.resamples = resamples
        self.real: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.fake: list[tuple[torch.Tensor, torch.Tensor]] = []

    def update(self, x, real, labels=None):
        if labels is None:
            raise EvalError("fid_per_class needs the class of every image")
        (self.real if real else self.fake).append((x, labels.to(torch.int64).cpu()))

    @staticmethod
    def _joined(parts):
        if not parts:
            return torch.empty(0, 0), torch.empty(0, dtype=torch.int64)
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def compute(self, seed):
        (xr, yr), (xf, yf) = self._joined(self.real), self._joined(self.fake)
        per_class, groups, left_out = {}, [], []
        for c in sorted(set(yr.tolist()) | set(yf.tolist())):
            real_c, fake_c = xr[yr == c], xf[yf == c]
            if real_c.shape[0] < 2 or fake_c.shape[0] < 2:
                left_out.append(f"{c} ({real_c.shape[0]} real, {fake_c.shape[0]} generated)")
                continue
            ones = torch.ones
            per_class[str(c)] = frechet_weighted(real_c, ones(real_c.shape[0]), fake_c, ones(fake_c.shape[0]),
                                                 exact=True)
            groups.append((real_c, fake_c))
        if not per_class:
            raise EvalError("fid_per_class needs at least 2 real and 2 generated images of some class; "
                            f"none has them: {', '.join(left_out) or 'no images'}")
        worst = max(per_class, key=per_class.get)
        counts = {str(c): [int((yr == c).sum()), int((yf == c).sum())] for c in map(int, per_class)}
        details = {"per_class": per_class, "worst_class": int(worst), "classes_measured": len(per_class),
                   "images_per_class": counts, "implementation": "gankit fid_per_class (float64 moments)"}
        if left_out:
            details["note"] = f"fid_per_class left out classes with fewer than 2 images: {', '.join(left_out)}"
        mean = sum(per_class.values()) / len(per_class)
        worst_details = {"class": int(worst), "per_class": per_class}
        intervals = (None, None)
        finite = all(torch.isfinite(x).all() for group in groups for x in group)
        if self.resamples and finite:
            started = time.perf_counter()
            draws = bootstrap.frechet_resamples_by_class(groups, self.resamples, seed, self.device)
            intervals = bootstrap.percentiles(draws.mean(0)), bootstrap.percentiles(draws.max(0))
            about = {**bootstrap.details(self.resamples, seed, time.perf_counter() - started),
                     "ci_method": bootstrap.METHOD + ", within each class"}
            details.update(about)
            worst_details.update({**about, "ci_seconds": 0.0})  # one computation gave both intervals
        return [Value("fid_per_class", mean, None, details, intervals[0]),
                Value("fid_per_class/worst", per_class[worst], None, worst_details, intervals[1])]

    def reset_fake(self):
        self.fake = []
