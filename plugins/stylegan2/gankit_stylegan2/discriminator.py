"""StyleGAN2's discriminator (Karras et al. 2020) as in StyleGAN2-ADA (NVlabs/stylegan2-ada-pytorch).

    D = StyleGAN2Discriminator(image_size=32, architecture="orig", mbstd_group_size=32)  # 'cifar'
    logits = D(images)              # N; D(images, labels) when conditional

One block per resolution image_size, ..., 8, each two 3x3 convolutions, the
second downsampling through the [1, 3, 3, 1] FIR filter, then the 4x4 head:
minibatch standard deviation, a 3x3 convolution, two fully connected layers.
Architectures: ``resnet`` (official default; a 1x1 downsampling shortcut,
branch and shortcut scaled by √½), ``orig`` (plain), ``skip`` (the image,
downsampled, enters every block through its own fromRGB). A conditional D
maps the label through its own mapping network to ``cmap`` and projects:
logit = <out(x), cmap> / √cmap_dim (Miyato & Koyama 2018).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from gankit.nn.equalized import EqualizedConv2d, EqualizedLinear
from gankit.nn.resample import downsample2d, setup_filter
from gankit_stylegan2 import checks
from gankit_stylegan2.mapping import MappingNetwork

WHO = "discriminator"


def largest_divisor(n: int, limit: int) -> int:
    """The largest g <= limit that divides n."""
    return next(g for g in range(min(limit, n), 0, -1) if n % g == 0)


class MinibatchStd(nn.Module):
    """Appends ``num_channels`` feature maps: the standard deviation of the features across
    groups of ``group_size`` images (Karras et al. 2018), averaged over channels and pixels.

    The batch is split into groups of min(group_size, N) (None: the whole batch). When N is
    not a multiple of that, where the official layer fails, the largest group size below it
    that divides N is used, so a short last batch works; otherwise identical to the official.
    """

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = n if self.group_size is None else largest_divisor(n, self.group_size)
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)  # G x n x F x c x H x W: image i is in group i % (N/G)
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # n x F x c x H x W, the std over each group
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)  # n x F x 1 x 1
        return torch.cat([x, y.repeat(g, 1, h, w)], dim=1)  # N x (C + F) x H x W

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorBlock(nn.Module):
    """C x r x r (and the image, for 'skip' and the first block) -> C' x r/2 x r/2."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, channels: int,
                 architecture: str, resample_filter: tuple[float, ...], conv_clamp: float | None,
                 reduced_precision: bool, fp16_dtype: torch.dtype, trainable: list[bool]):
        super().__init__()
        self.in_channels, self.resolution, self.architecture = in_channels, resolution, architecture
        self.reduced_precision, self.fp16_dtype = reduced_precision, fp16_dtype
        self.register_buffer("resample_filter", setup_filter(resample_filter), persistent=False)
        frozen = iter(trainable)  # one flag per layer, in the official order
        conv = dict(activation="lrelu", conv_clamp=conv_clamp)
        self.from_rgb = (EqualizedConv2d(channels, tmp_channels, 1, trainable=next(frozen), **conv)
                         if in_channels == 0 or architecture == "skip" else None)
        self.conv = EqualizedConv2d(tmp_channels, tmp_channels, 3, trainable=next(frozen), **conv)
        self.conv_down = EqualizedConv2d(tmp_channels, out_channels, 3, down=2, resample_filter=resample_filter,
                                         trainable=next(frozen), **conv)
        self.skip = (EqualizedConv2d(tmp_channels, out_channels, 1, bias=False, down=2,
                                     resample_filter=resample_filter, trainable=next(frozen))
                     if architecture == "resnet" else None)

    @property
    def num_layers(self) -> int:
        return sum(m is not None for m in (self.from_rgb, self.conv, self.conv_down, self.skip))

    def forward(self, x: Tensor | None, img: Tensor | None, force_fp32: bool = False) -> tuple[Tensor, Tensor | None]:
        dtype = checks.compute_dtype(self.reduced_precision, self.fp16_dtype, self.conv.weight.device, force_fp32)
        if x is not None:
            x = x.to(dtype)
        if self.from_rgb is not None:
            img = img.to(dtype)
            y = self.from_rgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.skip is not None:
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv_down(self.conv(x), gain=math.sqrt(0.5))
            x = y.add_(x)
        else:
            x = self.conv_down(self.conv(x))
        return x, img


class DiscriminatorHead(nn.Module):
    """The 4x4 epilogue: [fromRGB,] minibatch std, 3x3 conv, fc, out (1 logit or cmap_dim projections)."""

    def __init__(self, in_channels: int, cmap_dim: int, channels: int, architecture: str, mbstd_group_size: int | None,
                 mbstd_channels: int, conv_clamp: float | None, resolution: int = 4):
        super().__init__()
        self.cmap_dim = cmap_dim
        self.from_rgb = (EqualizedConv2d(channels, in_channels, 1, activation="lrelu")
                         if architecture == "skip" else None)
        self.mbstd = MinibatchStd(mbstd_group_size, mbstd_channels) if mbstd_channels > 0 else None
        self.conv = EqualizedConv2d(in_channels + mbstd_channels, in_channels, 3, activation="lrelu",
                                    conv_clamp=conv_clamp)
        self.fc = EqualizedLinear(in_channels * resolution**2, in_channels, activation="lrelu")
        self.out = EqualizedLinear(in_channels, cmap_dim or 1)

    def forward(self, x: Tensor, img: Tensor | None, cmap: Tensor | None) -> Tensor:
        x = x.to(torch.float32)
        if self.from_rgb is not None:
            x = x + self.from_rgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))  # N x 1, or N x cmap_dim
        if self.cmap_dim:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class StyleGAN2Discriminator(nn.Module):
    """image (N x channels x image_size x image_size) [, labels (N,)] -> logits (N,).

    Args (official name in brackets; defaults are the official networks.py's):
        num_classes: classes of a conditional D [c_dim]; None (or 0) for unconditional.
        image_size, channels: the input [img_resolution, img_channels].
        architecture: 'resnet' (default), 'orig' ('cifar') or 'skip'.
        channel_base, channel_max: min(channel_base // r, channel_max) channels at resolution r.
        num_fp16_res, fp16_dtype: the top N resolutions in reduced precision on CUDA (never
            4x4; float32 on the CPU); 'bfloat16' is the better choice on current GPUs (no
            overflow, so conv_clamp matters less), 'float16' is the official.
        conv_clamp: clamp every convolution's output to ±conv_clamp; None = no clamp.
        cmap_dim: width of the label projection; None = the 4x4 channels.
        mapping_layers: layers of the label mapping network (8).
        mbstd_group_size: images per minibatch-std group [mbstd_group_size]: 4; None = the
            whole batch. A batch not divisible by it uses the largest group size that divides it.
        mbstd_channels: feature maps the minibatch-std layer adds [mbstd_num_channels]; 0 = none.
        resample_filter: the FIR taps for downsampling.
        freeze_layers: Freeze-D, the first N layers (from the input) are not trained.

    Without labels a conditional D scores with the mean of its class projections.
    """

    small_args = {"channel_base": 256, "channel_max": 8}  # a small, fast instance: what gankit's registry-wide tests build

    def __init__(self, num_classes: int | None = None, image_size: int = 32, channels: int = 3,
                 architecture: Literal["orig", "skip", "resnet"] = "resnet", channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 0, fp16_dtype: Literal["float16", "bfloat16"] = "float16",
                 conv_clamp: float | None = None, cmap_dim: int | None = None, mapping_layers: int = 8,
                 mbstd_group_size: int | None = 4, mbstd_channels: int = 1,
                 resample_filter: tuple[float, ...] = (1, 3, 3, 1), freeze_layers: int = 0):
        super().__init__()
        channels_at = checks.channels_per_resolution(WHO, channel_base, channel_max, image_size)
        checks.at_least(WHO, "channels", channels, 1)
        checks.at_least(WHO, "mapping_layers", mapping_layers, 1)
        checks.at_least(WHO, "freeze_layers", freeze_layers, 0)
        checks.at_least(WHO, "mbstd_channels", mbstd_channels, 0, "; 0 disables the minibatch-std layer")
        if mbstd_group_size is not None:
            checks.at_least(WHO, "mbstd_group_size", mbstd_group_size, 1, " (or null for the whole batch)")
        if mbstd_channels and channels_at[4] % mbstd_channels:
            raise checks.fail(WHO, f"mbstd_channels ({mbstd_channels}) must divide the 4x4 channels "
                                   f"({channels_at[4]}, from channel_base and channel_max)")
        self.num_classes = checks.classes(WHO, num_classes)
        self.image_size, self.channels = image_size, channels
        architecture = checks.architecture(WHO, architecture)
        resample_filter = checks.fir(WHO, resample_filter)
        conv_clamp = checks.clamp(WHO, conv_clamp)
        fp16_from = checks.fp16_from(WHO, num_fp16_res, image_size)
        fp16_dtype = checks.precision(WHO, fp16_dtype)
        if self.num_classes:
            if cmap_dim is not None:
                checks.at_least(WHO, "cmap_dim", cmap_dim, 1, " (or null for the 4x4 channels)")
            cmap_dim = channels_at[4] if cmap_dim is None else cmap_dim
        else:
            cmap_dim = 0
        self.cmap_dim = cmap_dim

        self.blocks = nn.ModuleDict()  # str(image_size), ..., "8"
        layer = 0
        for res in sorted(channels_at, reverse=True)[:-1]:
            width = channels_at[res]
            first = res == image_size
            trainable = [layer + i >= freeze_layers for i in range(4)]
            block = DiscriminatorBlock(0 if first else width, width, channels_at[res // 2], res, channels,
                                       architecture, resample_filter, conv_clamp, reduced_precision=res >= fp16_from,
                                       fp16_dtype=fp16_dtype, trainable=trainable)
            self.blocks[str(res)] = block
            layer += block.num_layers
        self.mapping = (MappingNetwork(0, self.num_classes, cmap_dim, None, num_layers=mapping_layers, w_avg_beta=None)
                        if self.num_classes else None)
        self.head = DiscriminatorHead(channels_at[4], cmap_dim, channels, architecture, mbstd_group_size,
                                      mbstd_channels, conv_clamp)

    def forward(self, x: Tensor, labels: Tensor | None = None, *, force_fp32: bool = False) -> Tensor:
        img, h = x, None
        for block in self.blocks.values():
            h, img = block(h, img, force_fp32=force_fp32)
        cmap = None
        if self.mapping is not None:
            if labels is None:  # every class's projection, averaged
                every = torch.arange(self.num_classes, device=x.device)
                cmap = self.mapping(None, every).mean(dim=0, keepdim=True)
            else:
                cmap = self.mapping(None, labels)
        return self.head(h, img, cmap)[:, 0]  # N

    def extra_repr(self) -> str:
        cond = f", num_classes={self.num_classes}, cmap_dim={self.cmap_dim}" if self.num_classes else ""
        return f"image_size={self.image_size}, channels={self.channels}{cond}"
