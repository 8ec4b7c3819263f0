"""Evaluation's user-facing errors (all :class:`gankit.core.errors.GankitError`: exit 2, no traceback)."""

from __future__ import annotations

from gankit.core.errors import GankitError


class EvalError(GankitError):
    """An evaluation that cannot give a trustworthy number: too few samples, a non-finite result."""


class WeightsError(EvalError):
    """The Inception weights cannot be used: missing, corrupt, or not an InceptionV3 state dict."""


class WeightsMissingError(WeightsError):
    """The Inception weights are neither on disk nor downloadable (or cannot be read)."""


class CorruptWeightsError(WeightsError):
    """A cached weights file whose sha256 is not the published one (an interrupted or altered download)."""
