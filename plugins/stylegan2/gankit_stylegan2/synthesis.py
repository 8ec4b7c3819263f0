"""The synthesis network: ws (N x num_ws x w_dim) -> image, from a learned 4x4 constant.

One block per resolution 4, 8, ..., image_size. Each block (but the first)
upsamples with a modulated 3x3 convolution through the [1, 3, 3, 1] FIR
filter (``conv_up``), then a second modulated 3x3 convolution (``conv``);
every such layer adds per-pixel noise scaled by a learned strength. The
first block starts from the constant and has ``conv`` only. Architectures
(Karras et al. 2020, figure 7):

- ``skip`` (default): every block has a toRGB; the image so far is
  upsampled through the FIR filter and the block's RGB added to it;
- ``orig``: a toRGB on the last block only;
- ``resnet``: ``orig`` plus a 1x1 upsampling shortcut around each block's
  convolutions, branch and shortcut each scaled by √½.

A block uses one w per convolution and one for its toRGB, the toRGB's w
shared with the next block's first convolution, so num_ws = 2 log2(size) - 2.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gankit.nn.equalized import EqualizedConv2d
from gankit.nn.modulated import ModulatedConv2d
from gankit.nn.resample import setup_filter, upsample2d
from gankit_stylegan2.checks import compute_dtype

NOISE_MODES = ("random", "const", "none")


class SynthesisLayer(ModulatedConv2d):
    """A modulated, demodulated 3x3 convolution with noise input (``noise_strength``, ``noise_const``)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1,
                 use_noise: bool = True, resample_filter: tuple[float, ...] = (1, 3, 3, 1),
                 conv_clamp: float | None = None):
        super().__init__(in_channels, out_channels, w_dim, kernel_size=3, demodulate=True, up=up,
                         activation="lrelu", resample_filter=resample_filter, conv_clamp=conv_clamp)
        self.resolution, self.use_noise = resolution, use_noise
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))  # the fixed noise of 'const'
            self.noise_strength = nn.Parameter(torch.zeros([]))

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random", fused: bool = True,
                gain: float = 1.0) -> Tensor:
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        return super().forward(x, w, noise=noise, fused=fused, gain=gain)


class SynthesisBlock(nn.Module):
    """in_channels x r/2 x r/2 (or the constant) -> out_channels x r x r, and the RGB image so far."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, channels: int,
                 is_last: bool, architecture: str, resample_filter: tuple[float, ...], conv_clamp: float | None,
                 use_noise: bool, reduced_precision: bool, fp16_dtype: torch.dtype):
        super().__init__()
        self.in_channels, self.resolution, self.architecture = in_channels, resolution, architecture
        self.reduced_precision, self.fp16_dtype = reduced_precision, fp16_dtype
        self.register_buffer("resample_filter", setup_filter(resample_filter), persistent=False)
        layer = dict(w_dim=w_dim, resolution=resolution, use_noise=use_noise, resample_filter=resample_filter,
                     conv_clamp=conv_clamp)
        first = in_channels == 0
        self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution)) if first else None
        self.conv_up = None if first else SynthesisLayer(in_channels, out_channels, up=2, **layer)
        self.conv = SynthesisLayer(out_channels, out_channels, **layer)
        has_rgb = is_last or architecture == "skip"
        self.to_rgb = ModulatedConv2d(out_channels, channels, w_dim, kernel_size=1, demodulate=False,
                                      activation="linear", conv_clamp=conv_clamp) if has_rgb else None
        self.skip = (EqualizedConv2d(in_channels, out_channels, 1, bias=False, up=2, resample_filter=resample_filter)
                     if not first and architecture == "resnet" else None)
        self.num_conv = 1 if first else 2
        self.num_torgb = int(has_rgb)

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: str = "random",
                fused_modconv: bool | None = None, force_fp32: bool = False) -> tuple[Tensor, Tensor | None]:
        w = iter(ws.unbind(dim=1))
        dtype = compute_dtype(self.reduced_precision, self.fp16_dtype, ws.device, force_fp32)
        fused = fused_modconv
        if fused is None:  # fused only in inference, and in reduced precision only for a single image
            fused = not self.training and (dtype == torch.float32 or ws.shape[0] == 1)

        if self.const is not None:
            x = self.const.to(dtype).unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)  # N x C x 4 x 4
            x = self.conv(x, next(w), noise_mode, fused)
        elif self.skip is not None:
            x = x.to(dtype)
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv_up(x, next(w), noise_mode, fused)
            x = y.add_(self.conv(x, next(w), noise_mode, fused, gain=math.sqrt(0.5)))
        else:
            x = x.to(dtype)
            x = self.conv_up(x, next(w), noise_mode, fused)  # C x r x r
            x = self.conv(x, next(w), noise_mode, fused)

        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.to_rgb is not None:
            y = self.to_rgb(x, next(w), fused=fused).to(torch.float32)
            img = img.add_(y) if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (N x num_ws x w_dim) -> image (N x channels x image_size x image_size)."""

    def __init__(self, w_dim: int, image_size: int, channels: int, channels_at: dict[int, int],
                 architecture: str = "skip", resample_filter: tuple[float, ...] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_noise: bool = True, fp16_from: int = 2**30,
                 fp16_dtype: torch.dtype = torch.float16):
        super().__init__()
        self.w_dim, self.image_size, self.channels = w_dim, image_size, channels
        self.blocks = nn.ModuleDict()  # "4", "8", ..., str(image_size)
        self.num_ws = 0
        for res, width in channels_at.items():
            block = SynthesisBlock(channels_at[res // 2] if res > 4 else 0, width, w_dim, res, channels,
                                   is_last=res == image_size, architecture=architecture,
                                   resample_filter=resample_filter, conv_clamp=conv_clamp, use_noise=use_noise,
                                   reduced_precision=res >= fp16_from, fp16_dtype=fp16_dtype)
            self.blocks[str(res)] = block
            self.num_ws += block.num_conv + (block.num_torgb if res == image_size else 0)

    def forward(self, ws: Tensor, noise_mode: str = "random", fused_modconv: bool | None = None,
                force_fp32: bool = False) -> Tensor:
        """The image for ``ws``; ``noise_mode``: 'random' (fresh noise), 'const' (the stored
        ``noise_const``) or 'none'; ``force_fp32`` runs every block in float32."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be N x {self.num_ws} x {self.w_dim}, got {tuple(ws.shape)}")
        ws = ws.to(torch.float32)
        x = img = None
        start = 0
        for block in self.blocks.values():
            block_ws = ws.narrow(1, start, block.num_conv + block.num_torgb)
            start += block.num_conv  # a toRGB's w is the next block's first
            x, img = block(x, img, block_ws, noise_mode=noise_mode, fused_modconv=fused_modconv,
                           force_fp32=force_fp32)
        return img
