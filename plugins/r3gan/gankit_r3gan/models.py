"""The R3GAN generator and discriminator (Huang et al. 2024, "The GAN is dead; long live the GAN!").

    G: z (+ class embedding) -> 4x4 basis -> [blocks] -> (up, blocks) x n -> 1x1 -> image
    D: image -> 1x1 -> (blocks, down) x n -> [blocks] -> 4x4 basis -> logit (or class projection)

A port of brownvc/R3GAN (``R3GAN/Networks.py``, ``training/networks.py``)
that gives the official networks' outputs and gradients: stage i works at
4·2^i pixels in both networks (D runs its stages from the last to the first).
With the defaults at ``image_size`` 32 these are the paper's CIFAR-10 networks
(20,732,160 and 20,683,776 parameters), at 64 its FFHQ-64 networks.
There is no output nonlinearity: G's images are not bounded to [-1, 1], as in the paper.

Reduced precision (the official ``FP16Stages``): the stages in ``fp16_stages``
run in ``reduced_dtype`` on CUDA, with float32 weights cast on every call; on
the CPU everything stays float32. bfloat16 (the official code's actual choice
despite the name) is the better choice on current GPUs: it has float32's
range, so nothing overflows and no loss scaling is needed; float16 has three
more bits of mantissa but can overflow or underflow without a GradScaler.
The official G returns images in its last stage's dtype; this one returns float32.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from gankit.core.errors import GankitError
from gankit.nn.conditional import cycle_labels
from gankit_r3gan.config import resolve_layout
from gankit_r3gan.layers import Conv2d, ResidualBlock
from gankit_r3gan.transitions import (
    ClassEmbedding, DiscriminativeBasis, DownsampleTransition, GenerativeBasis, UpsampleTransition,
)

DEFAULT_FILTER = (1, 2, 1)


class Stage(nn.Module):
    """One resolution: a transition and residual blocks, run in float32 or (on CUDA) a reduced dtype.

    ``transition_first``: G's stages change resolution then refine; D's refine then change resolution.
    """

    def __init__(self, transition: nn.Module, blocks: list[ResidualBlock], transition_first: bool,
                 cuda_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.transition = transition
        self.blocks = nn.ModuleList(blocks)
        self.transition_first = transition_first
        self.cuda_dtype = cuda_dtype

    def compute_dtype(self, x: Tensor) -> torch.dtype:
        """The dtype this stage computes in for ``x``: ``cuda_dtype`` on CUDA, float32 elsewhere."""
        return self.cuda_dtype if x.is_cuda else torch.float32

    def forward(self, x: Tensor) -> Tensor:
        x = x.to(self.compute_dtype(x))
        if self.transition_first:
            x = self.transition(x)
        for block in self.blocks:
            x = block(x)
        return x if self.transition_first else self.transition(x)


def _check_classes(who: str, num_classes: int | None, embed_dim: int | None) -> None:
    if num_classes is not None and num_classes < 1:
        raise GankitError(f"{who}: num_classes must be >= 1 (or null for an unconditional model), got {num_classes}")
    if embed_dim is not None and embed_dim < 1:
        raise GankitError(f"{who}: embed_dim must be >= 1, got {embed_dim}")


class R3GANGenerator(nn.Module):
    """z (N x nz) [, labels (N)] -> image (N x channels x image_size x image_size), float32.

    Args (per-stage lists run from the 4x4 stage to full resolution; None: the paper's layout):
        nz: noise dimension (the paper: 64).
        image_size, channels: the output images' size (a power of two) and channels.
        num_classes: class-conditional when set: the label's embedding is concatenated to z.
        embed_dim: the class embedding's size (None: nz, as the paper's conditional presets).
        widths, cardinalities, blocks, expansion, kernel_size: the stages (see :mod:`gankit_r3gan.config`).
        width: cap every stage's width at this (cardinalities shrink to match): a narrow copy.
        fp16_stages: stages run in ``reduced_dtype`` on CUDA (None: the paper's, the up to four
            highest resolutions except 4x4; [] for none). Negative indices count from full resolution.
        reduced_dtype: 'bfloat16' (recommended) or 'float16'.
        resample_filter: the in-place low-pass taps of the up/downsampling.
    """

    small_args = {"width": 8}  # a small, fast instance: what gankit's registry-wide tests build

    output_range = None  # no output nonlinearity, as in the authors' code (see gankit.contracts.Generator)

    def __init__(self, nz: int = 64, image_size: int = 32, channels: int = 3, num_classes: int | None = None,
                 embed_dim: int | None = None, widths: list[int] | None = None,
                 cardinalities: list[int] | None = None, blocks: int | list[int] = 2, expansion: int = 2,
                 kernel_size: int = 3, width: int | None = None, fp16_stages: list[int] | None = None,
                 reduced_dtype: Literal["bfloat16", "float16"] = "bfloat16",
                 resample_filter: tuple[float, ...] = DEFAULT_FILTER):
        super().__init__()
        who = "r3gan generator"
        if nz < 1 or channels < 1:
            raise GankitError(f"{who}: nz and channels must be >= 1, got nz={nz}, channels={channels}")
        _check_classes(who, num_classes, embed_dim)
        layout = resolve_layout(who=who, image_size=image_size, widths=widths, cardinalities=cardinalities,
                                blocks=blocks, expansion=expansion, kernel_size=kernel_size, width=width,
                                fp16_stages=fp16_stages, reduced_dtype=reduced_dtype)
        self.nz, self.image_size, self.channels, self.layout = nz, image_size, channels, layout
        if num_classes is not None:
            self.num_classes = num_classes
            self.embed = ClassEmbedding(num_classes, nz if embed_dim is None else embed_dim)
            in_features = nz + self.embed.weight.shape[0]
        else:
            in_features = nz

        stages = []
        for i, (w, card, n) in enumerate(zip(layout.widths, layout.cardinalities, layout.blocks)):
            if i == 0:
                transition = GenerativeBasis(in_features, w)  # N x (nz + embed) -> w x 4 x 4
            else:
                transition = UpsampleTransition(layout.widths[i - 1], w, resample_filter)  # -> w x 2H x 2W
            body = [ResidualBlock(w, card, layout.expansion, layout.kernel_size, layout.num_blocks)
                    for _ in range(n)]
            dtype = layout.reduced_dtype if i in layout.reduced_stages else torch.float32
            stages.append(Stage(transition, body, transition_first=True, cuda_dtype=dtype))
        self.stages = nn.ModuleList(stages)
        self.to_image = Conv2d(layout.widths[-1], channels, 1)  # 1x1 "aggregation" to the image channels

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        x = z.reshape(z.shape[0], self.nz)
        if hasattr(self, "embed"):
            if labels is None:  # gankit's convention: the classes in turn
                labels = cycle_labels(z.shape[0], self.num_classes, z.device)
            x = torch.cat([x, self.embed(labels).to(x.dtype)], dim=1)  # N x (nz + embed_dim)
        elif labels is not None:
            raise GankitError("r3gan generator: got labels, but it is unconditional (num_classes is None)")
        for stage in self.stages:
            x = stage(x)  # N x width_i x 4·2^i x 4·2^i
        return self.to_image(x).float()  # in the last stage's dtype, returned as float32


class R3GANDiscriminator(nn.Module):
    """image (N x channels x image_size x image_size) [, labels (N)] -> one logit per image (N).

    Conditional (``num_classes`` set): the 4x4 basis gives an ``embed_dim``-vector φ(x) and the logit
    is the projection ⟨φ(x), embed(y)⟩ (R3GAN has no class-free term; without labels D scores
    against the average class's embedding). Arguments as :class:`R3GANGenerator`'s; ``embed_dim``
    None is the 4x4 stage's width, as the paper's conditional preset; ``fp16_stages`` None is the
    paper's (the up to four highest resolutions except 4x4, the mirror of G's).
    """

    small_args = {"width": 8}  # a small, fast instance: what gankit's registry-wide tests build

    def __init__(self, image_size: int = 32, channels: int = 3, num_classes: int | None = None,
                 embed_dim: int | None = None, widths: list[int] | None = None,
                 cardinalities: list[int] | None = None, blocks: int | list[int] = 2, expansion: int = 2,
                 kernel_size: int = 3, width: int | None = None, fp16_stages: list[int] | None = None,
                 reduced_dtype: Literal["bfloat16", "float16"] = "bfloat16",
                 resample_filter: tuple[float, ...] = DEFAULT_FILTER):
        super().__init__()
        who = "r3gan discriminator"
        if channels < 1:
            raise GankitError(f"{who}: channels must be >= 1, got {channels}")
        _check_classes(who, num_classes, embed_dim)
        layout = resolve_layout(who=who, image_size=image_size, widths=widths, cardinalities=cardinalities,
                                blocks=blocks, expansion=expansion, kernel_size=kernel_size, width=width,
                                fp16_stages=fp16_stages, reduced_dtype=reduced_dtype)
        self.image_size, self.channels, self.layout = image_size, channels, layout
        self.from_image = Conv2d(channels, layout.widths[-1], 1)  # 1x1 "extraction" from the image channels

        out_features = 1
        if num_classes is not None:
            self.num_classes = num_classes
            out_features = layout.widths[0] if embed_dim is None else embed_dim
            # gain 1/√embed_dim: the projection's sum over embed_dim products keeps unit variance
            self.embed = ClassEmbedding(num_classes, out_features, gain=1 / math.sqrt(out_features))

        stages = []
        for i, (w, card, n) in enumerate(zip(layout.widths, layout.cardinalities, layout.blocks)):
            if i == 0:
                transition = DiscriminativeBasis(w, out_features)  # w x 4 x 4 -> out_features
            else:
                transition = DownsampleTransition(w, layout.widths[i - 1], resample_filter)  # -> H/2 x W/2
            body = [ResidualBlock(w, card, layout.expansion, layout.kernel_size, layout.num_blocks)
                    for _ in range(n)]
            dtype = layout.reduced_dtype if i in layout.reduced_stages else torch.float32
            stages.append(Stage(transition, body, transition_first=False, cuda_dtype=dtype))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        first = self.stages[-1]  # the full-resolution stage; the extraction runs in its dtype
        h = self.from_image(x.to(first.compute_dtype(x)))
        for stage in reversed(self.stages):
            h = stage(h)  # N x width_i x 4·2^i x 4·2^i, then N x out_features after the 4x4 basis
        if hasattr(self, "embed"):
            # ⟨φ(x), embed(y)⟩ = Σ_k φ(x)_k embed(y)_k
            e = self.embed.mean()[None] if labels is None else self.embed(labels)
            h = (h * e).sum(dim=1, keepdim=True)
        elif labels is not None:
            raise GankitError("r3gan discriminator: got labels, but it is unconditional (num_classes is None)")
        return h.reshape(h.shape[0]).float()
