"""Evaluation: FID, IS, KID (torchmetrics' definitions, torch-fidelity's InceptionV3), PRDC and SWD.

Modules, one job each:

- :mod:`~gankit.eval.weights`: find, download and check the Inception weights;
- :mod:`~gankit.eval.features`: the ``feature_extractors`` registry's extractors;
- :mod:`~gankit.eval.images`: uint8 quantisation, image folders, batching;
- :mod:`~gankit.eval.stats`, :mod:`~gankit.eval.swd`: the statistics, in float64;
- :mod:`~gankit.eval.metrics`: the ``metrics`` registry's entries;
- :mod:`~gankit.eval.cache`: reference features on disk, computed once;
- :mod:`~gankit.eval.engine`: one evaluation, one extractor pass per image;
- :mod:`~gankit.eval.evaluator`: the trainer's interface.
"""

from __future__ import annotations


def register_metrics(registry) -> None:
    """Register the built-in metrics and feature extractors (``registry``: kind -> Registry)."""
    from gankit.eval import features, metrics

    metrics.register(registry("metrics"))
    registry("feature_extractors").register("inception", features.inception)


__all__ = ["register_metrics"]
