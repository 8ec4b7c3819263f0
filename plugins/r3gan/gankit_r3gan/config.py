"""Stage layouts: the paper's defaults for an image size, the ``width`` cap, and argument checks.

A network of image size S has log2(S) - 1 stages, one per resolution
4, 8, ..., S. Every per-stage list (widths, cardinalities, blocks,
fp16_stages) is ordered from the 4x4 stage to the full-resolution stage, in
the generator and in the discriminator alike, so one list serves both (the
official discriminator kwargs hold the same lists reversed).

The default layout is the paper's (Huang et al. 2024, Table 8 / the official
``train.py`` presets): width 768 and cardinality 96 (groups of 16 of the 1536
expanded channels) up to 32x32, then width halving per doubling of the
resolution (64: 384, 128: 192, 256: 96) with the same group size; two blocks
per stage; expansion 2. At 32x32 that is the CIFAR-10 preset, at 64x64
FFHQ-64, at 256x256 FFHQ-256.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.core.errors import GankitError

BASE_WIDTH = 768  # the paper's width up to 32x32 (3/4 of 1024)
GROUP_SIZE = 16  # expanded channels per group in every preset: 768·2/96 = 384·2/48 = 16
MAX_REDUCED_STAGES = 4  # the presets run at most the four highest resolutions in reduced precision
REDUCED_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Layout:
    """A checked stage layout; index i is the stage at 4·2^i pixels."""

    widths: tuple[int, ...]
    cardinalities: tuple[int, ...]
    blocks: tuple[int, ...]
    expansion: int
    kernel_size: int
    reduced_stages: frozenset[int]  # non-negative stage indices run in reduced precision on CUDA
    reduced_dtype: torch.dtype

    @property
    def num_stages(self) -> int:
        return len(self.widths)

    @property
    def num_blocks(self) -> int:
        """The total number of residual blocks: MSR's variance scaling parameter L."""
        return sum(self.blocks)


def num_stages(image_size: int, who: str) -> int:
    """log2(image_size) - 1: the stages at 4, 8, ..., image_size pixels."""
    if image_size < 4 or image_size & (image_size - 1):
        raise GankitError(f"{who}: image_size must be a power of two >= 4 (16 to 256 have the paper's "
                          f"layouts), got {image_size}")
    return image_size.bit_length() - 2


def default_widths(stages: int) -> list[int]:
    """768 up to 32x32, then halving with each doubling of the resolution (at least GROUP_SIZE)."""
    return [max(BASE_WIDTH * 32 // max(4 << i, 32), GROUP_SIZE) for i in range(stages)]


def _largest_divisor_at_most(n: int, k: int) -> int:
    k = max(1, min(k, n))
    while n % k:
        k -= 1
    return k


def _per_stage(value: int | list[int], stages: int, name: str, who: str, image_size: int) -> list[int]:
    if isinstance(value, int):
        return [value] * stages
    value = [int(v) for v in value]
    if len(value) != stages:
        raise GankitError(f"{who}: {name} has {len(value)} entries but image_size {image_size} needs {stages} "
                          f"stages (4x4 up to {image_size}x{image_size}, lowest resolution first)")
    return value


def _positive(value: int, name: str, who: str) -> None:
    if value < 1:
        raise GankitError(f"{who}: {name} must be >= 1, got {value}")


def resolve_layout(*, who: str, image_size: int, widths: list[int] | None, cardinalities: list[int] | None,
                   blocks: int | list[int], expansion: int, kernel_size: int, width: int | None,
                   fp16_stages: list[int] | None, reduced_dtype: str) -> Layout:
    """The layout the arguments describe, with every problem reported as a :class:`GankitError`."""
    stages = num_stages(image_size, who)
    _positive(expansion, "expansion", who)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise GankitError(f"{who}: kernel_size must be odd and >= 1 (for 'same' padding), got {kernel_size}")
    widths = default_widths(stages) if widths is None else _per_stage(widths, stages, "widths", who, image_size)
    for w in widths:
        _positive(w, "every entry of widths", who)
    if cardinalities is None:  # the presets' group size: 16 expanded channels per group
        cardinalities = [_largest_divisor_at_most(w * expansion, w * expansion // GROUP_SIZE) for w in widths]
    else:
        cardinalities = _per_stage(cardinalities, stages, "cardinalities", who, image_size)
    blocks = _per_stage(blocks, stages, "blocks", who, image_size)
    if any(b < 0 for b in blocks) or sum(blocks) < 1:
        raise GankitError(f"{who}: blocks must be >= 0 per stage with at least one block in all, got {blocks}")

    if width is not None:
        # A narrow copy of the layout: cap each width and shrink the cardinality in proportion (the
        # same group size), down to a divisor of the expanded width so that the groups still divide.
        _positive(width, "width", who)
        capped = [min(w, width) for w in widths]
        cardinalities = [_largest_divisor_at_most(c_w * expansion, round(c * c_w / w))
                         for c, c_w, w in zip(cardinalities, capped, widths)]
        widths = capped

    for i, (w, c) in enumerate(zip(widths, cardinalities)):
        if c < 1 or (w * expansion) % c:
            raise GankitError(f"{who}: stage {i} ({4 << i}x{4 << i}) has width {w} x expansion {expansion} = "
                              f"{w * expansion} expanded channels, which cardinality {c} does not divide into "
                              f"equal groups; choose a cardinality that divides {w * expansion}")

    if reduced_dtype not in REDUCED_DTYPES:
        raise GankitError(f"{who}: reduced_dtype must be 'bfloat16' (recommended) or 'float16', got {reduced_dtype!r}")
    if fp16_stages is None:  # the presets': the highest resolutions, up to four, never the 4x4 stage
        reduced = set(range(max(1, stages - MAX_REDUCED_STAGES), stages))
    else:
        reduced = set()
        for s in fp16_stages:
            if not -stages <= s < stages:
                raise GankitError(f"{who}: fp16_stages entry {s} is not a stage; image_size {image_size} has "
                                  f"stages 0 (4x4) to {stages - 1} ({image_size}x{image_size}), or -1 to -{stages}")
            reduced.add(s % stages)
    return Layout(tuple(widths), tuple(cardinalities), tuple(blocks), expansion, kernel_size,
                  frozenset(reduced), REDUCED_DTYPES[reduced_dtype])
