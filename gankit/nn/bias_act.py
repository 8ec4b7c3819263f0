"""Bias, activation, gain and clamp in one call, as StyleGAN2's layers apply them.

    y = bias_act(x, b, act="lrelu", clamp=256)   # lrelu(x + b) · √2, clamped to ±256

StyleGAN2 (``torch_utils/ops/bias_act.py``) fuses these into a CUDA kernel;
this is the same arithmetic in plain PyTorch ops, in the same order, so it
needs no extension and differentiates to any order. ``torch.compile`` fuses
it when speed matters.

Each activation has a default gain that keeps the signal's variance under
unit-variance inputs (√2 for ReLU-like functions, He et al. 2015).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Activation:
    fn: Callable[[Tensor, float], Tensor]
    alpha: float  # the default negative slope (lrelu) or unused
    gain: float  # the default output gain


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, a: x, 0.0, 1.0),
    "relu": Activation(lambda x, a: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": Activation(lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2)),
    "tanh": Activation(lambda x, a: torch.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, a: torch.sigmoid(x), 0.0, 1.0),
    "elu": Activation(lambda x, a: F.elu(x), 0.0, 1.0),
    "selu": Activation(lambda x, a: F.selu(x), 0.0, 1.0),
    "softplus": Activation(lambda x, a: F.softplus(x), 0.0, 1.0),
    "swish": Activation(lambda x, a: torch.sigmoid(x) * x, 0.0, math.sqrt(2)),
}


def activation_gain(act: str) -> float:
    """The default gain of ``act`` (√2 for relu, lrelu and swish; 1 otherwise)."""
    return _activation(act).gain


def _activation(act: str) -> Activation:
    try:
        return ACTIVATIONS[act]
    except KeyError:
        raise ValueError(f"unknown activation {act!r}; choose from {', '.join(ACTIVATIONS)}") from None


def bias_act(x: Tensor, b: Tensor | None = None, dim: int = 1, act: str = "linear", alpha: float | None = None,
             gain: float | None = None, clamp: float | None = None) -> Tensor:
    """``clamp(act(x + b) · gain)``: ``b`` is added along axis ``dim``; ``alpha`` is lrelu's slope;
    ``gain`` defaults to the activation's own; ``clamp`` (if set) bounds the result to ±clamp."""
    spec = _activation(act)
    alpha = spec.alpha if alpha is None else float(alpha)
    gain = spec.gain if gain is None else float(gain)
    if b is not None:
        shape = [-1 if i == dim else 1 for i in range(x.ndim)]
        x = x + b.to(x.dtype).reshape(shape)
    x = spec.fn(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x
