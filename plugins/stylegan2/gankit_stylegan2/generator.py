"""StyleGAN2's generator (Karras et al. 2020) as in StyleGAN2-ADA (NVlabs/stylegan2-ada-pytorch).

    G = StyleGAN2Generator(image_size=32, mapping_layers=2, conv_clamp=256, style_mixing_prob=0)  # 'cifar'
    img = G(z)                                   # training mode: style mixing, w_avg tracked
    ws = G.mapping(z, labels, truncation_psi=0.7)
    img = G.synthesis(ws, noise_mode="const")

``G(z)`` in training mode does what the official loss's ``run_G`` does: map
z (updating ``w_avg``), then with probability ``style_mixing_prob`` replace
the ws from a random cutoff on by those of a second z (``torch.randn_like``,
``w_avg`` not updated), then synthesise with random noise. In eval mode it
never mixes and never moves ``w_avg``. All randomness comes from the global
torch RNG. Images are not clamped: nominally in [-1, 1].
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from gankit_stylegan2 import checks
from gankit_stylegan2.mapping import MappingNetwork
from gankit_stylegan2.synthesis import SynthesisNetwork

WHO = "generator"


class StyleGAN2Generator(nn.Module):
    """z (N x nz) [, labels (N,)] -> image (N x channels x image_size x image_size).

    Args (official name in brackets; defaults are the official networks.py's):
        nz, w_dim: the dimensions of z [z_dim] and w.
        num_classes: classes of a conditional generator [c_dim]; None (or 0) for unconditional.
        image_size, channels: the output [img_resolution, img_channels].
        mapping_layers: fully connected layers in the mapping network [num_layers]: 8; 2 in 'cifar'.
        mapping_lr: their learning-rate multiplier [lr_multiplier].
        embed_dim, mapping_dim: label-embedding and hidden widths of the mapping
            network [embed_features, layer_features]; None = w_dim.
        w_avg_beta: decay of the running mean of w, updated in training mode.
        channel_base, channel_max: a block at resolution r has min(channel_base // r,
            channel_max) channels; channel_base=256, channel_max=8 is a tiny model for tests.
        num_fp16_res: run the top N resolutions (never 4x4) in reduced precision, on CUDA
            only; on the CPU every layer stays float32.
        fp16_dtype: the reduced precision: 'float16' (official) or 'bfloat16'. bfloat16 is the
            better choice on current GPUs: float32's range, so it cannot overflow and
            ``conv_clamp`` matters less; float16 needs the clamp (256 in the paper configs).
        conv_clamp: clamp every convolution's output to ±conv_clamp; None = no clamp.
        architecture: 'skip' (default), 'orig' or 'resnet' (see synthesis.py).
        resample_filter: the FIR taps for upsampling.
        use_noise: per-pixel noise inputs.
        style_mixing_prob: probability of style mixing in training mode: 0.9 (the official
            loss's default); the official 'cifar' config uses 0.
    """

    small_args = {"channel_base": 256, "channel_max": 8}  # a small, fast instance: what gankit's registry-wide tests build

    output_range = None  # no output nonlinearity, as in the authors' code (see gankit.contracts.Generator)

    def __init__(self, nz: int = 512, w_dim: int = 512, num_classes: int | None = None, image_size: int = 32,
                 channels: int = 3, mapping_layers: int = 8, mapping_lr: float = 0.01,
                 embed_dim: int | None = None, mapping_dim: int | None = None, w_avg_beta: float = 0.995,
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 0,
                 fp16_dtype: Literal["float16", "bfloat16"] = "float16", conv_clamp: float | None = None,
                 architecture: Literal["orig", "skip", "resnet"] = "skip",
                 resample_filter: tuple[float, ...] = (1, 3, 3, 1), use_noise: bool = True,
                 style_mixing_prob: float = 0.9):
        super().__init__()
        channels_at = checks.channels_per_resolution(WHO, channel_base, channel_max, image_size)
        for name, value in (("nz", nz), ("w_dim", w_dim), ("channels", channels), ("mapping_layers", mapping_layers)):
            checks.at_least(WHO, name, value, 1)
        for name, value in (("embed_dim", embed_dim), ("mapping_dim", mapping_dim)):
            if value is not None:
                checks.at_least(WHO, name, value, 1, " (or null for w_dim)")
        if not mapping_lr > 0:
            raise checks.fail(WHO, f"mapping_lr must be > 0, got {mapping_lr!r}")
        if not 0 <= w_avg_beta <= 1:
            raise checks.fail(WHO, f"w_avg_beta must be in [0, 1], got {w_avg_beta!r}")
        if not 0 <= style_mixing_prob <= 1:
            raise checks.fail(WHO, f"style_mixing_prob must be in [0, 1], got {style_mixing_prob!r}; 0 disables it")

        self.nz, self.w_dim, self.image_size, self.channels = nz, w_dim, image_size, channels
        self.num_classes = checks.classes(WHO, num_classes)  # None: unconditional (gankit's convention)
        self.style_mixing_prob = float(style_mixing_prob)
        self.synthesis = SynthesisNetwork(
            w_dim, image_size, channels, channels_at, architecture=checks.architecture(WHO, architecture),
            resample_filter=checks.fir(WHO, resample_filter), conv_clamp=checks.clamp(WHO, conv_clamp),
            use_noise=use_noise, fp16_from=checks.fp16_from(WHO, num_fp16_res, image_size),
            fp16_dtype=checks.precision(WHO, fp16_dtype))
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(nz, self.num_classes, w_dim, self.num_ws, num_layers=mapping_layers,
                                      embed_dim=embed_dim, layer_dim=mapping_dim, lr_multiplier=mapping_lr,
                                      w_avg_beta=w_avg_beta)

    @property
    def w_avg(self) -> Tensor:
        """The running mean of w (w_dim,), the centre of truncation."""
        return self.mapping.w_avg

    def truncate(self, w: Tensor, psi: float, cutoff: int | None = None) -> Tensor:
        """``w_avg + psi · (w - w_avg)``, for the first ``cutoff`` ws only when given."""
        return self.mapping.truncate(w, psi, cutoff)

    def forward(self, z: Tensor, labels: Tensor | None = None, *, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "random", return_ws: bool = False):
        """Images (N x C x H x W); with ``return_ws`` also the ws they were made from (path length needs them)."""
        trunc = dict(truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        ws = self.mapping(z, labels, **trunc)  # N x num_ws x w_dim
        if self.training and self.style_mixing_prob > 0:
            ws = self._mix_styles(z, labels, ws, trunc)
        images = self.synthesis(ws, noise_mode=noise_mode)
        return (images, ws) if return_ws else images

    def _mix_styles(self, z: Tensor, labels: Tensor | None, ws: Tensor, trunc: dict) -> Tensor:
        """The official run_G's style mixing: from a random cutoff in [1, num_ws) on, with
        probability ``style_mixing_prob``, the ws of a second z (the RNG is drawn the same way
        whether or not this batch mixes)."""
        cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, ws.shape[1])
        mix = torch.rand([], device=ws.device) < self.style_mixing_prob
        cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, ws.shape[1]))
        other = self.mapping(torch.randn_like(z), labels, update_w_avg=False, **trunc)
        ws[:, cutoff:] = other[:, cutoff:]
        return ws

    def extra_repr(self) -> str:
        cond = f", num_classes={self.num_classes}" if self.num_classes else ""
        return f"nz={self.nz}, w_dim={self.w_dim}, image_size={self.image_size}, num_ws={self.num_ws}{cond}"
