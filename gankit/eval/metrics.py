"""The ``metrics`` registry's entries: what each metric reads and how it turns that into rows.

A metric is a class with ``uses`` (which inputs it reads), a
``from_config(eval_section)`` constructor and ``compute(inputs) -> [Value]``.
Inputs come from one pass per image through each extractor (see
:mod:`gankit.eval.engine`), shared by every metric of the evaluation:

- ``"features"``: the chosen extractor's features (eval.feature_extractor),
  real and generated: FID, KID, PRDC;
- ``"logits"``: Inception's unbiased logits of the generated images: IS;
- ``"images"``: Laplacian-pyramid patches of both sets: SWD (no weights).

A plugin adds a metric by subclassing :class:`Metric` and registering it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from gankit.eval import stats, swd
from gankit.eval.errors import EvalError
from gankit.eval.rng import numpy_generator, torch_generator


@dataclass
class Inputs:
    """Everything one evaluation extracted; a metric reads what its ``uses`` says."""

    seed: int
    real: stats.FeatureStats | None = None  # chosen extractor, reference images
    fake: stats.FeatureStats | None = None  # chosen extractor, generated images
    fake_logits: Tensor | None = None  # Inception logits_unbiased, generated images
    real_patches: list[Tensor] | None = None  # SWD descriptors per pyramid level
    fake_patches: list[Tensor] | None = None
    patch_size: int | None = None  # image size the SWD pyramid starts from


@dataclass
class Value:
    """One number of one metric, with the settings it was computed with."""

    metric: str
    value: float
    std: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Metric:
    """Base class of the ``metrics`` registry's entries."""

    uses: ClassVar[str] = "features"  # "features", "logits" or "images"

    @classmethod
    def from_config(cls, cfg) -> Metric:
        """This metric with the settings of an ``eval`` recipe section."""
        return cls()

    def compute(self, inputs: Inputs) -> list[Value]:
        raise NotImplementedError


class FID(Metric):
    """Fréchet Inception Distance (Heusel et al. 2017); lower is better."""

    def compute(self, inputs: Inputs) -> list[Value]:
        return [Value("fid", stats.frechet_distance(inputs.real, inputs.fake))]


class KID(Metric):
    """Kernel Inception Distance (Bińkowski et al. 2018): mean and std of MMD^2 over subsets."""

    def __init__(self, subset_size: int = 1000, subsets: int = 100):
        self.subset_size, self.subsets = subset_size, subsets

    @classmethod
    def from_config(cls, cfg) -> KID:
        return cls(cfg.kid_subset_size, cfg.kid_subsets)

    def compute(self, inputs: Inputs) -> list[Value]:
        available = min(inputs.real.n, inputs.fake.n)
        size, details = self.subset_size, {}
        if available < size:
            # torch-fidelity and torchmetrics refuse; adapting (and saying so) keeps small evaluations useful.
            size = available
            details["note"] = (
                f"kid_subset_size {self.subset_size} is more than the {available} images available "
                f"(the smaller set); using subsets of {available}"
            )
        value, std = stats.kid(inputs.real.features, inputs.fake.features, self.subsets, size,
                               numpy_generator(inputs.seed, "kid"))
        return [Value("kid", value, std, {"kid_subset_size": size, "kid_subsets": self.subsets, **details})]


class IS(Metric):
    """Inception Score (Salimans et al. 2016) of the generated images; higher is better."""

    uses = "logits"

    def __init__(self, splits: int = 10):
        self.splits = splits

    @classmethod
    def from_config(cls, cfg) -> IS:
        return cls(cfg.is_splits)

    def compute(self, inputs: Inputs) -> list[Value]:
        n = inputs.fake_logits.shape[0]
        splits, details = self.splits, {}
        if n < splits:
            splits = n
            details["note"] = f"is_splits {self.splits} is more than the {n} images; using {n} splits"
        value, std = stats.inception_score(inputs.fake_logits, splits, torch_generator(inputs.seed, "is"))
        return [Value("is", value, std, {"is_splits": splits, **details})]


class PRDC(Metric):
    """Precision, recall, density, coverage (Naeem et al. 2020): four rows ``prdc/<name>``."""

    def __init__(self, k: int = 5):
        self.k = k

    @classmethod
    def from_config(cls, cfg) -> PRDC:
        return cls(cfg.prdc_k)

    def compute(self, inputs: Inputs) -> list[Value]:
        values = stats.prdc(inputs.real.features, inputs.fake.features, self.k)
        return [Value(f"prdc/{name}", v, None, {"prdc_k": self.k}) for name, v in values.items()]


class SWD(Metric):
    """Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018), x 1e3."""

    uses = "images"

    def compute(self, inputs: Inputs) -> list[Value]:
        value, levels = swd.swd(inputs.real_patches, inputs.fake_patches, torch_generator(inputs.seed, "swd"))
        sizes = swd.resolutions(inputs.patch_size)
        return [Value("swd", value, None, {"swd_levels": {str(s): v for s, v in zip(sizes, levels)}})]


def register(metrics) -> None:
    for name, cls in (("fid", FID), ("is", IS), ("kid", KID), ("prdc", PRDC), ("swd", SWD)):
        metrics.register(name, cls)


def check_finite(value: Value) -> Value:
    if not torch.isfinite(torch.tensor(value.value)):
        raise EvalError(f"{value.metric} came out {value.value}: not logging a meaningless number")
    return value
