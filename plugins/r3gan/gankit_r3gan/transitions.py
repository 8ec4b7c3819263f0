"""The layers between R3GAN's stages: interpolative resampling, the 4x4 bases and the class embedding.

Resampling is StyleGAN2's FIR resampling (:mod:`gankit.nn.resample`). R3GAN
names the in-place low-pass filter ([1, 2, 1]); resampling by 2 between pixel
grids needs it convolved with the box [1, 1]:

    [1, 2, 1] * [1, 1] = [1, 3, 3, 1],   f = (1/64) [1, 3, 3, 1]ᵀ[1, 3, 3, 1]   (a 4x4 filter, sum 1)

Upsampling inserts zeros and filters with 4f (the zeros dilute the mean
fourfold); downsampling filters with f and keeps every other pixel.
A change of width happens at the lower resolution: before upsampling in G,
after downsampling in D (a 1x1 convolution, only when the widths differ).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.core.errors import GankitError
from gankit.nn.resample import downsample2d, setup_filter, upsample2d
from gankit_r3gan.layers import Conv2d, Linear, msr_normal_


def interpolation_filter(taps: Sequence[float]) -> Tensor:
    """The 2-D resampling filter for R3GAN's in-place ``taps``: (taps * [1, 1]) ⊗ itself, summing to 1."""
    taps = torch.tensor([float(t) for t in taps], dtype=torch.float64, device="cpu")
    if taps.numel() == 0 or taps.sum() <= 0:
        raise GankitError(f"r3gan: resample_filter must be low-pass taps with a positive sum, e.g. [1, 2, 1]; "
                          f"got {taps.tolist()}")
    widened = torch.cat([taps, taps.new_zeros(1)]) + torch.cat([taps.new_zeros(1), taps])  # taps * [1, 1]
    return setup_filter(widened.float(), separable=False)  # outer product, normalised


class UpsampleTransition(nn.Module):
    """C_in x H x W -> C_out x 2H x 2W: a 1x1 convolution when the widths differ, then upsampling."""

    def __init__(self, in_channels: int, out_channels: int, taps: Sequence[float]):
        super().__init__()
        self.register_buffer("filter", interpolation_filter(taps))
        self.project = Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        if self.project is not None:
            x = self.project(x)
        return upsample2d(x, self.filter)


class DownsampleTransition(nn.Module):
    """C_in x H x W -> C_out x H/2 x W/2: downsampling, then a 1x1 convolution when the widths differ."""

    def __init__(self, in_channels: int, out_channels: int, taps: Sequence[float]):
        super().__init__()
        self.register_buffer("filter", interpolation_filter(taps))
        self.project = Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        x = downsample2d(x, self.filter)
        return x if self.project is None else self.project(x)


class GenerativeBasis(nn.Module):
    """(N x in_features) -> N x C x 4 x 4: a learned 4x4 basis per channel, scaled by a linear map of the input.

        out[n, c] = basis[c] · (W z)[n, c]            basis ~ N(0, 1), W MSR-initialised
    """

    def __init__(self, in_features: int, channels: int):
        super().__init__()
        self.basis = nn.Parameter(torch.randn(channels, 4, 4))
        self.linear = Linear(in_features, channels)

    def forward(self, z: Tensor) -> Tensor:
        scale = self.linear(z)  # N x C
        return self.basis.to(z.dtype)[None] * scale[:, :, None, None]


class DiscriminativeBasis(nn.Module):
    """N x C x 4 x 4 -> N x out_features: a learned 4x4 filter per channel (a depthwise 4x4 convolution
    without padding, so each channel becomes one number), then a linear map."""

    def __init__(self, channels: int, out_features: int):
        super().__init__()
        self.basis = nn.Parameter(msr_normal_(torch.empty(channels, 1, 4, 4)))  # fan-in 16: std 1/4
        self.linear = Linear(channels, out_features)

    def forward(self, x: Tensor) -> Tensor:
        h = F.conv2d(x, self.basis.to(x.dtype), groups=x.shape[1])  # N x C x 1 x 1
        return self.linear(h.flatten(1))


class ClassEmbedding(nn.Module):
    """Labels -> N x embed_dim: a bias-free linear map of the one-hot class vector, stored as the
    official embed_dim x num_classes matrix (so an int label picks a column).

    Takes int64 labels of shape (N,) or float class vectors of shape (N, num_classes)
    (one-hot, or soft mixtures of classes).
    """

    def __init__(self, num_classes: int, embed_dim: int, gain: float = 1.0):
        super().__init__()
        self.num_classes = num_classes
        self.weight = nn.Parameter(msr_normal_(torch.empty(embed_dim, num_classes), gain))

    def forward(self, labels: Tensor) -> Tensor:
        if labels.dim() == 2 and labels.is_floating_point():
            return F.linear(labels, self.weight.to(labels.dtype))  # class vectors: y Wᵀ
        return F.embedding(labels.reshape(-1), self.weight.t())  # column y of W, = onehot(y) Wᵀ exactly

    def mean(self) -> Tensor:
        """The average class's embedding (embed_dim): the class-free score of a projection D."""
        return self.weight.mean(dim=1)
