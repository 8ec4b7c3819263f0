"""Modulated (and demodulated) convolution: StyleGAN2's style-driven layer (Karras et al. 2020, section 2.2).

    conv = ModulatedConv2d(512, 512, w_dim=512, kernel_size=3, up=2, activation="lrelu")
    y = conv(x, w)                          # w: N x w_dim, one style vector per image

Each image gets its own weights: the learned affine map of ``w`` gives one
scale per input channel (the style, s), the weights are scaled by it,
w'_oik = s_i · w_oik, and, with ``demodulate``, each output channel is
renormalised to unit expected variance, w''_oik = w'_oik / √(Σ_ik w'_oik² + ε).
This replaces StyleGAN's AdaIN without its droplet artefacts.

Two ways to run it give the same result: ``fused=True`` folds the per-image
weights into one grouped convolution (one group per image); ``fused=False``
scales the activations before and after a shared convolution, cheaper when
training. StyleGAN2 fuses in inference only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gankit.nn.bias_act import activation_gain, bias_act
from gankit.nn.equalized import DEFAULT_FILTER, EqualizedLinear, conv2d_resample
from gankit.nn.resample import Padding, setup_filter


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, noise: Tensor | None = None, up: int = 1,
                     down: int = 1, padding: Padding = 0, resample_filter: Tensor | None = None,
                     demodulate: bool = True, fused: bool = True) -> Tensor:
    """x (N x I x H x W) convolved with ``weight`` (O x I x k x k) modulated per image by
    ``styles`` (N x I), optionally demodulated; ``noise`` (broadcastable to the output) is
    added after demodulation. Resampling as :func:`gankit.nn.equalized.conv2d_resample`.
    """
    n = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:  # rescale first so that fp16 cannot overflow
        peak = weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True)
        weight = weight * (1 / math.sqrt(in_channels * kh * kw) / peak)
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    w = dcoefs = None
    if fused:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # N x O x I x k x k
    if demodulate and fused:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # N x O
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)
    elif demodulate:
        # Σ_ik (s_i w_oik)² = Σ_i s_i² Σ_k w_oik²: the same N x O coefficients without building the
        # N x O x I x k x k weights (and their backward), the costliest part of a training step's G on a CPU.
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()

    if not fused:  # scale the activations around one shared convolution
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, down=down, padding=padding)
        if demodulate and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(n, -1, 1, 1))
        if demodulate:
            return x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        return x + noise.to(x.dtype) if noise is not None else x

    # One grouped convolution: the batch becomes the channel axis, one group per image.
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), resample_filter, up=up, down=down, padding=padding, groups=n)
    x = x.reshape(n, -1, *x.shape[2:])
    return x + noise if noise is not None else x


class ModulatedConv2d(nn.Module):
    """A k x k modulated convolution with its style affine map, bias, activation and clamp.

    ``affine`` maps w (N x w_dim) to the styles (N x in_channels), its bias
    initialised to 1 (identity styles at the start). Without demodulation
    (StyleGAN2's toRGB) the styles carry the equalised-lr gain 1/√fan_in;
    with it the gain would cancel out. ``up=2`` upsamples through the FIR
    filter. ``forward(x, w, noise, fused, gain)``: ``gain`` multiplies the
    activation's output and the clamp.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 3,
                 demodulate: bool = True, up: int = 1, activation: str = "lrelu",
                 resample_filter: Sequence[float] | None = DEFAULT_FILTER, conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.up, self.activation, self.conv_clamp = demodulate, up, activation, conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = activation_gain(activation)
        self.register_buffer("resample_filter", setup_filter(resample_filter) if up > 1 and resample_filter is not None
                             else None, persistent=False)  # a constant, rebuilt from the arguments
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor, w: Tensor, noise: Tensor | None = None, fused: bool = True,
                gain: float = 1.0) -> Tensor:
        styles = self.affine(w)  # N x in_channels
        if not self.demodulate:
            styles = styles * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, demodulate=self.demodulate, fused=fused)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, demodulate={self.demodulate}"
        s += f", up={self.up}" if self.up > 1 else ""
        return s + f", activation={self.activation}"
