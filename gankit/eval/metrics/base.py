"""The metric interface: a metric reads one output of the shared extractor pass, batch by batch.

An evaluation makes one pass per image through each feature extractor
(:mod:`gankit.eval.engine`); every metric is handed, per batch, the output
its ``uses`` names:

- ``"features"``: an extractor's features of the reference and the generated
  images: the recipe's ``eval.feature_extractor`` (FID, KID, PRDC), or the one
  the metric names in ``extractor`` (FD-DINOv2: ``dinov2_vitl14``); metrics
  reading the same extractor share its one pass;
- ``"logits"``: Inception's unbiased logits, generated images only: IS;
- ``"images"``: the uint8 images themselves: SWD (needs no weights).

A metric is a component like any other: registered in the ``metrics``
registry, built with the keyword arguments of its ``eval.metrics`` entry
(``{name: kid, subset_size: 500}``), checked against its signature. For an
entry given by bare name, ``recipe_defaults`` maps constructor arguments to
the older ``eval.*`` keys (``kid_subset_size``), so old recipes keep their
meaning. A metric whose reference side is expensive to rebuild exposes it
(:meth:`Metric.real_state`) and the reference cache stores it on disk.

A metric knows itself: :attr:`Metric.higher_is_better` (every eval row
records it, so ``best.pt``, ``gankit compare`` and wandb's summary need no
list of names) and :meth:`Metric.provenance` (what measured it, beside the
numbers).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from gankit.eval.errors import EvalError


@dataclass
class Value:
    """One number of one metric, with the settings it was computed with."""

    metric: str
    value: float
    std: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    interval: tuple[float, float] | None = None  # 95% bootstrap interval (gankit.eval.bootstrap), when it has one


class Metric:
    """Base class of the ``metrics`` registry's entries."""

    uses: ClassVar[str] = "features"  # "features", "logits" or "images"
    extractor: ClassVar[str | None] = None  # feature_extractors entry it reads; None: eval.feature_extractor
    needs_labels: ClassVar[bool] = False  # update() also takes labels= (the images' classes): per-class metrics
    reads_real: ClassVar[bool] = True  # whether it compares against the reference images (IS does not)
    recipe_defaults: ClassVar[dict[str, str]] = {}  # constructor argument -> legacy eval.* key
    higher_is_better: ClassVar[bool] = False  # the direction of every value it gives (FID, KID, SWD: lower)
    name: str = "metric"  # the registry name it was built under (set by the engine)
    device: torch.device | str = "cpu"  # where heavy statistics (bootstrap resamples) run (set by the engine)

    def provenance(self) -> dict[str, Any]:
        """What measured this metric, recorded in each of its rows (beside its settings and reference set).

        By default the feature extractor its ``uses`` names, as the engine
        describes it (the chosen extractor for ``"features"``, Inception for
        ``"logits"``: weights, their hash, input resolution, resize); a
        metric that reads the images themselves says what it computes on them.
        """
        return {}

    def update(self, x: Tensor, real: bool) -> None:
        """Take one batch of the output this metric uses (float32 on the CPU; uint8 for images)."""
        raise NotImplementedError

    def compute(self, seed: int) -> list[Value]:
        """The metric's values from everything updated so far; random draws seeded from ``seed``."""
        raise NotImplementedError

    def reset_fake(self) -> None:
        """Forget the generated side (the reference side stays for the next evaluation)."""
        raise NotImplementedError

    def real_state(self) -> dict[str, Tensor] | None:
        """The reference side as plain tensors for the on-disk cache, or None to rebuild it from features."""
        return None

    def load_real_state(self, state: dict[str, Tensor]) -> None:
        """Restore the reference side :meth:`real_state` returned."""
        raise NotImplementedError

    def take_real_features(self, features: Tensor) -> None:
        """After :meth:`load_real_state`, the cached reference features themselves (for a metric that resamples
        them, e.g. for its interval); by default not needed."""

    def identity(self) -> dict[str, Any]:
        """What the cached reference side depends on besides the images and the extractor."""
        return {"metric": self.name}


class FeatureTap(nn.Module):
    """The ``feature=`` module handed to torchmetrics: it returns the features gankit already extracted.

    torchmetrics' FID, KID and IS call their feature module on every batch
    they are updated with. gankit extracts each image once for all metrics
    (torch-fidelity's InceptionV3 with its TF1-compatible resize), then hands
    each metric the batch's features through this tap, in float64 so that
    torchmetrics keeps its statistics in double precision.
    """

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features  # torchmetrics reads it instead of running a dummy image
        self._next: Tensor | None = None

    def feed(self, features: Tensor) -> Tensor:
        """Set the features the next call returns; returns a placeholder batch of the same length."""
        self._next = features.to(torch.float64)
        return torch.empty(features.shape[0], 0, dtype=torch.uint8)

    def forward(self, placeholder: Tensor) -> Tensor:
        out, self._next = self._next, None
        if out is None or out.shape[0] != placeholder.shape[0]:
            raise RuntimeError("FeatureTap called without features for this batch")
        return out


def implementation(cls_name: str) -> str:
    """``"torchmetrics 1.9.0 FrechetInceptionDistance"`` for provenance."""
    import torchmetrics

    return f"torchmetrics {torchmetrics.__version__} {cls_name}"


@contextlib.contextmanager
def seeded(seed: int, stream: str):
    """A fence around torchmetrics' draws from the global RNG (KID subsets, IS shuffle), seeded per stream."""
    from gankit.eval.rng import stream_seed

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stream_seed(seed, stream))
        yield


@contextlib.contextmanager
def quiet_torchmetrics():
    """Silence torchmetrics' notices that say nothing to a gankit user (all features are kept in memory,
    by design here; the std of a single IS split)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer")
        warnings.filterwarnings("ignore", message=r".*std\(\): degrees of freedom")
        yield


def check_finite(value: Value) -> Value:
    if not math.isfinite(value.value):
        raise EvalError(f"{value.metric} came out {value.value}: not logging a meaningless number")
    return value
