"""Argument checks shared by the generator and the discriminator: each names the argument and the fix."""

from __future__ import annotations

import math

import torch

from gankit.core.errors import GankitError

ARCHITECTURES = ("orig", "skip", "resnet")
PRECISIONS = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def fail(who: str, message: str) -> GankitError:
    return GankitError(f"stylegan2 {who}: {message}")


def resolution_log2(who: str, image_size: int) -> int:
    """log2(image_size) for a power of two >= 4."""
    if not isinstance(image_size, int) or image_size < 4 or image_size & (image_size - 1):
        raise fail(who, f"image_size must be a power of two >= 4 (4, 8, 16, 32, ...), got {image_size!r}; "
                        f"set data.image_size (or {who}.image_size) to one")
    return int(math.log2(image_size))


def at_least(who: str, name: str, value: object, low: int, hint: str = "") -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise fail(who, f"{name} must be an integer >= {low}, got {value!r}{hint}")


def classes(who: str, num_classes: int | None) -> int | None:
    """None (or 0) for an unconditional model, else the number of classes (>= 1)."""
    if num_classes is None or num_classes == 0:
        return None
    at_least(who, "num_classes", num_classes, 1, "; leave it unset (or 0) for an unconditional model")
    return num_classes


def architecture(who: str, value: str) -> str:
    if value not in ARCHITECTURES:
        raise fail(who, f"architecture must be one of {', '.join(map(repr, ARCHITECTURES))}, got {value!r}")
    return value


def channels_per_resolution(who: str, channel_base: int, channel_max: int, image_size: int) -> dict[int, int]:
    """{resolution: min(channel_base // resolution, channel_max)} for 4, 8, ..., image_size."""
    at_least(who, "channel_base", channel_base, 1)
    at_least(who, "channel_max", channel_max, 1)
    if channel_base < image_size:
        raise fail(who, f"channel_base ({channel_base}) must be at least image_size ({image_size}): a layer at "
                        f"resolution r has min(channel_base // r, channel_max) channels; raise channel_base")
    log2 = resolution_log2(who, image_size)
    return {2**i: min(channel_base // 2**i, channel_max) for i in range(2, log2 + 1)}


def fp16_from(who: str, num_fp16_res: int, image_size: int) -> int:
    """The lowest resolution run in reduced precision: the top ``num_fp16_res``, never 4x4."""
    at_least(who, "num_fp16_res", num_fp16_res, 0, " (the number of highest resolutions in reduced precision)")
    return max(2 ** (resolution_log2(who, image_size) + 1 - num_fp16_res), 8)


def precision(who: str, fp16_dtype: str) -> torch.dtype:
    if fp16_dtype not in PRECISIONS:
        raise fail(who, f"fp16_dtype must be 'float16' or 'bfloat16', got {fp16_dtype!r}")
    return PRECISIONS[fp16_dtype]


def clamp(who: str, conv_clamp: float | None) -> float | None:
    if conv_clamp is not None and not conv_clamp > 0:
        raise fail(who, f"conv_clamp must be a positive number or null (no clamping), got {conv_clamp!r}")
    return None if conv_clamp is None else float(conv_clamp)


def fir(who: str, resample_filter: object) -> tuple[float, ...]:
    taps = tuple(float(t) for t in resample_filter)  # type: ignore[union-attr]
    if not taps or sum(taps) == 0:
        raise fail(who, f"resample_filter must be a non-empty list of taps with a non-zero sum, "
                        f"got {resample_filter!r}")
    return taps


def compute_dtype(reduced: bool, dtype: torch.dtype, device: torch.device, force_fp32: bool) -> torch.dtype:
    """The dtype a block runs in: reduced precision only on CUDA; float32 on the CPU and elsewhere."""
    return dtype if reduced and not force_fp32 and device.type == "cuda" else torch.float32
