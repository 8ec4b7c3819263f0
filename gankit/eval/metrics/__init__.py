"""The ``metrics`` registry's built-in entries, one per file: ``fid``, ``kid``, ``is`` (torchmetrics),
``prdc`` and ``swd`` (gankit's own). The interface is :class:`~gankit.eval.metrics.base.Metric`.
"""

from gankit.eval.metrics.base import FeatureTap, Metric, Value, check_finite

__all__ = ["FeatureTap", "Metric", "Value", "check_finite"]
