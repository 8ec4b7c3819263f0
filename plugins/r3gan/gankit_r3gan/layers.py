"""R3GAN's building blocks: bias-free linear maps, the biased LeakyReLU and the residual block.

Every weight starts with the MSR (He et al. 2015) initialisation, scaled for
fix-up style residual learning (Zhang et al. 2019; Huang et al. 2024, §4):

    W ~ N(0, (gain / √fan_in)²)                      fan_in = in_channels/groups · k · k
    gain of a block's inner layers = g · L^(-1/(2m-2))   g = √(2 / (1 + 0.2²)), m = 3 layers per block

where L (the "variance scaling parameter") is the number of residual blocks
in the whole network. A block's last layer starts at zero, so every block is
the identity at initialisation and the signal's variance does not grow with
depth. Weights are cast to the input's dtype on every call, so a stage can
run in bfloat16 or float16 while its parameters stay float32.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.nn.bias_act import bias_act

LRELU_SLOPE = 0.2
# The gain that keeps a unit-variance signal's second moment through LeakyReLU(0.2): √(2 / (1 + α²)).
LRELU_GAIN = math.sqrt(2 / (1 + LRELU_SLOPE**2))
LAYERS_PER_BLOCK = 3  # 1x1 expand, k x k grouped, 1x1 project


def msr_normal_(weight: Tensor, gain: float = 1.0) -> Tensor:
    """Fill ``weight`` (out x in/groups [x k x k]) from N(0, (gain / √fan_in)²); gain 0 gives zeros."""
    fan_in = weight[0].numel()  # in/groups · k · k: the inputs one output unit sums over
    with torch.no_grad():
        return weight.normal_(0.0, gain / math.sqrt(fan_in))


class Linear(nn.Module):
    """y = x Wᵀ, no bias; W is out_features x in_features, MSR-initialised with ``gain``."""

    def __init__(self, in_features: int, out_features: int, gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(msr_normal_(torch.empty(out_features, in_features), gain))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.to(x.dtype))


class Conv2d(nn.Module):
    """A bias-free, stride-1, 'same'-padded convolution (odd ``kernel_size``), MSR-initialised with ``gain``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, groups: int = 1,
                 gain: float = 1.0):
        super().__init__()
        self.groups = groups
        self.padding = (kernel_size - 1) // 2
        weight = torch.empty(out_channels, in_channels // groups, kernel_size, kernel_size)
        self.weight = nn.Parameter(msr_normal_(weight, gain))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight.to(x.dtype), padding=self.padding, groups=self.groups)


class BiasedLeakyReLU(nn.Module):
    """LeakyReLU(0.2)(x + b), b per channel (zero at first). No output gain: the gain lives in the
    next layer's initialisation (:data:`LRELU_GAIN`)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return bias_act(x, self.bias, act="lrelu", alpha=LRELU_SLOPE, gain=1.0)


class ResidualBlock(nn.Module):
    """x + project(act(grouped(act(expand(x))))): the inverted-bottleneck ResNeXt block of R3GAN.

    channels -> channels·expansion (1x1) -> grouped k x k in ``cardinality`` groups -> channels (1x1),
    each convolution followed (except the last) by a biased LeakyReLU. ``num_blocks`` is the
    network's total number of residual blocks, L above.
    """

    def __init__(self, channels: int, cardinality: int, expansion: int, kernel_size: int, num_blocks: int):
        super().__init__()
        hidden = channels * expansion
        gain = LRELU_GAIN * num_blocks ** (-1 / (2 * LAYERS_PER_BLOCK - 2))  # g · L^(-1/4)
        self.expand = Conv2d(channels, hidden, 1, gain=gain)
        self.act1 = BiasedLeakyReLU(hidden)
        self.conv = Conv2d(hidden, hidden, kernel_size, groups=cardinality, gain=gain)
        self.act2 = BiasedLeakyReLU(hidden)
        self.project = Conv2d(hidden, channels, 1, gain=0.0)  # zero: the block starts as the identity

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(self.act1(self.expand(x)))  # N x hidden x H x W
        return x + self.project(self.act2(h))
