"""Equalised-learning-rate layers (Karras et al. 2018, "Progressive growing of GANs", section 4.1).

    fc = EqualizedLinear(512, 512, activation="lrelu", lr_multiplier=0.01)
    conv = EqualizedConv2d(64, 128, 3, activation="lrelu", down=2, conv_clamp=256)

The weights are stored N(0, 1) (divided by the lr multiplier) and scaled at
run time by ``lr_multiplier / sqrt(fan_in)``: every layer then learns at the
same speed under Adam whatever its fan-in, and ``lr_multiplier`` slows a
layer down (StyleGAN's mapping network uses 0.01). The bias is scaled by
``lr_multiplier`` too.

:func:`conv2d_resample` is a convolution with FIR up- or downsampling
(``gankit.nn.resample``), padding applied once, choosing the same
execution order as StyleGAN2's ``conv2d_resample`` (NVlabs/stylegan2-ada-pytorch,
``torch_utils/ops/conv2d_resample.py``): a strided convolution after the
filter when downsampling, a transposed convolution before it when upsampling.
The order matters only in the last bits of float32, which is what parity with
the official networks needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.nn.bias_act import activation_gain, bias_act
from gankit.nn.resample import Padding, _padding, filter_size, setup_filter, upfirdn2d

DEFAULT_FILTER = (1, 3, 3, 1)  # StyleGAN2's binomial low-pass filter


def conv2d_resample(x: Tensor, w: Tensor, f: Tensor | None = None, up: int = 1, down: int = 1,
                    padding: Padding = 0, groups: int = 1) -> Tensor:
    """Convolve ``x`` (N x I x H x W) with ``w`` (O x I/groups x kh x kw), upsampling by ``up``
    or downsampling by ``down`` with the FIR filter ``f``; ``padding`` is in pixels of the
    upsampled image, applied once.

    Without upsampling ``w`` is applied as :func:`F.conv2d` applies it (a correlation); with
    upsampling as :func:`F.conv_transpose2d` does (a convolution), the convention of
    StyleGAN2's layers, so their weights load unchanged.
    """
    out_channels, in_per_group, kh, kw = w.shape
    fw, fh = filter_size(f)
    x0, x1, y0, y1 = _padding(padding)
    if up > 1:  # room for the filter around the inserted zeros
        x0, x1 = x0 + (fw + up - 1) // 2, x1 + (fw - up) // 2
        y0, y1 = y0 + (fh + up - 1) // 2, y1 + (fh - up) // 2
    if down > 1:
        x0, x1 = x0 + (fw - down + 1) // 2, x1 + (fw - down) // 2
        y0, y1 = y0 + (fh - down + 1) // 2, y1 + (fh - down) // 2
    pad = [x0, x1, y0, y1]
    pointwise = kh == 1 and kw == 1

    if down > 1 and up == 1:
        if pointwise:  # a 1x1 convolution commutes with the filter: shrink first
            return F.conv2d(upfirdn2d(x, f, down=down, padding=pad), w, groups=groups)
        return F.conv2d(upfirdn2d(x, f, padding=pad), w, stride=down, groups=groups)

    if up > 1 and down == 1 and pointwise:  # convolve at the small size, then upsample
        return upfirdn2d(F.conv2d(x, w, groups=groups), f, up=up, padding=pad, gain=up**2)

    if up > 1:  # a transposed strided convolution inserts the zeros; then the filter
        if groups == 1:
            wt = w.transpose(0, 1)  # I x O x kh x kw
        else:
            wt = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
            wt = wt.reshape(groups * in_per_group, out_channels // groups, kh, kw)
        x0, x1, y0, y1 = x0 - (kw - 1), x1 - (kw - up), y0 - (kh - 1), y1 - (kh - up)
        tx, ty = max(min(-x0, -x1), 0), max(min(-y0, -y1), 0)  # crop done by the transposed convolution
        x = F.conv_transpose2d(x, wt, stride=up, padding=[ty, tx], groups=groups)
        x = upfirdn2d(x, f, padding=[x0 + tx, x1 + tx, y0 + ty, y1 + ty], gain=up**2)
        return upfirdn2d(x, f, down=down) if down > 1 else x

    if x0 == x1 and y0 == y1 and x0 >= 0 and y0 >= 0:  # plain convolution, symmetric padding
        return F.conv2d(x, w, padding=[y0, x0], groups=groups)
    return F.conv2d(upfirdn2d(x, None, padding=pad), w, groups=groups)  # asymmetric or negative padding


class EqualizedLinear(nn.Module):
    """A fully connected layer, ``act(x · (W · gain)ᵀ + b · lr_multiplier)``, gain = lr_multiplier / √in."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())  # one fused multiply-add
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        s = f"{self.in_features}, {self.out_features}, activation={self.activation}"
        return s + f", lr_multiplier={self.bias_gain:g}"


class EqualizedConv2d(nn.Module):
    """A k x k convolution ('same' padding) with equalised lr, optional FIR up/downsampling by 2
    (``up``/``down``), bias, activation and an output clamp (``conv_clamp``; for fp16).

    ``forward(x, gain)`` multiplies the activation's output (and the clamp) by ``gain``,
    as residual branches scaled by √½ need. ``trainable=False`` stores the weights as
    buffers (frozen layers, Freeze-D).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1,
                 resample_filter: Sequence[float] | None = DEFAULT_FILTER, conv_clamp: float | None = None,
                 trainable: bool = True):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = activation_gain(activation)
        resampling = (up > 1 or down > 1) and resample_filter is not None
        self.register_buffer("resample_filter", setup_filter(resample_filter) if resampling else None,
                             persistent=False)  # a constant, rebuilt from the arguments
        weight = torch.randn(out_channels, in_channels, kernel_size, kernel_size)
        b = torch.zeros(out_channels) if bias else None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(b) if b is not None else None
        else:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", b)

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, activation={self.activation}"
        s += f", up={self.up}" if self.up > 1 else ""
        s += f", down={self.down}" if self.down > 1 else ""
        return s + (f", conv_clamp={self.conv_clamp:g}" if self.conv_clamp is not None else "")
