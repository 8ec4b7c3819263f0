"""Generating images outside the training step: fixed-noise grids, ``gankit sample``, evaluation.

Every image is G's in its sampling mode (:func:`~gankit.sampling.batchnorm.sampling_mode`):
eval mode (a StyleGAN2 generator neither mixes styles nor moves ``w_avg``),
BatchNorm as the run's ``sampling.batchnorm`` says (a generator from
:func:`gankit.load_generator` is already in it). Every buffer is put back
afterwards and the global random streams are fenced, so how often a run
samples never changes the run.
"""

from __future__ import annotations

import inspect
import math
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from gankit.core.errors import GankitError
from gankit.nn.conditional import class_labels, cycle_labels, num_classes
from gankit.sampling.batchnorm import sampling_mode
from gankit.sampling.latents import latents


def has_own_truncation(G: nn.Module) -> bool:
    """Whether G's forward takes ``truncation_psi`` (its own truncation trick, e.g. StyleGAN2's in w)."""
    try:
        return "truncation_psi" in inspect.signature(G.forward).parameters
    except (TypeError, ValueError):
        return False


@torch.no_grad()
def generate_from(G: nn.Module, z: Tensor, labels: Tensor | None = None, batch_size: int = 256,
                  truncation: float | None = None, seed: int = 0, batchnorm: str | None = None,
                  standing: dict[str, Tensor] | None = None) -> Tensor:
    """``G(z)`` (or ``G(z, labels)``) in chunks, in :func:`sampling_mode`, without gradients.

    ``truncation`` is passed as ``truncation_psi`` to a generator whose forward
    takes it (StyleGAN2's mapping network truncates w toward ``w_avg``).
    ``batchnorm`` (and ``standing``) set BatchNorm's mode for this call
    (the trainer's grids); None uses G as it is, the right thing for a
    generator from :func:`gankit.load_generator`.
    """
    extra = {"truncation_psi": truncation} if truncation is not None and has_own_truncation(G) else {}
    out = []
    with sampling_mode(G, seed, batchnorm, standing):
        for i, zc in enumerate(z.split(batch_size)):
            if labels is None:
                out.append(G(zc, **extra))
            else:
                out.append(G(zc, labels[i * batch_size: i * batch_size + zc.shape[0]], **extra))
    return torch.cat(out)


def generate(G: nn.Module, n: int, seed: int = 0, labels: Tensor | int | None = None,
             truncation: float | None = None, batch_size: int = 256) -> Tensor:
    """``n`` images (N, C, H, W) in [-1, 1], the same for the same ``seed``, on G's device.

    Latents are z ~ N(0, I) from ``seed`` (as ``gankit sample --seed``). A
    class-conditional G without ``labels`` draws every class in turn;
    ``labels`` is one int class for all images or ``n`` ints.
    ``truncation`` is G's own truncation trick when it has one (StyleGAN2:
    ψ toward ``w_avg``), else BigGAN's: z entries beyond ±ψ are drawn again.
    BatchNorm works as G is set up: a generator from :func:`gankit.load_generator`
    in its run's ``sampling.batchnorm`` mode, any other on running statistics
    (:func:`~gankit.sampling.batchnorm.prepare_for_sampling` sets another).
    """
    device = next((p.device for p in G.parameters()), torch.device("cpu"))
    own = truncation is not None and has_own_truncation(G)
    z = latents(n, G.nz, seed, None if own else truncation, device)
    return generate_from(G, z, sample_labels(G, n, labels, device), batch_size, truncation if own else None, seed)


def sample_labels(G: nn.Module, n: int, labels=None, device: torch.device | str | None = None) -> Tensor | None:
    """The labels :func:`generate` passes: None for an unconditional G; every class in turn when
    ``labels`` is None; ``labels`` an int is that class for all ``n``; else ``n`` int64 labels."""
    classes = num_classes(G)
    if classes is None:
        if labels is not None:
            raise GankitError(f"labels were given, but the generator ({type(G).__name__}) is not class-conditional "
                              "(it has no integer num_classes); leave labels out")
        return None
    if labels is None:
        return cycle_labels(n, classes, device)
    if isinstance(labels, int) and not isinstance(labels, bool):
        return class_labels(n, classes, labels, device)
    labels = torch.as_tensor(labels, device=device)
    if labels.shape != (n,) or labels.is_floating_point():
        raise GankitError(f"labels must be {n} integers (one per image) or one int class, got a tensor of "
                          f"shape {tuple(labels.shape)} and dtype {labels.dtype}")
    if labels.numel() and not (0 <= int(labels.min()) and int(labels.max()) < classes):
        raise GankitError(f"labels must be in 0..{classes - 1} (the generator has {classes} classes), "
                          f"got {int(labels.min())}..{int(labels.max())}")
    return labels.long()


def grid_image(images: Tensor, nrow: int | None = None, scale: int = 1, padding: int = 2) -> Tensor:
    """Images in [-1, 1] tiled ``nrow`` per row (default: a square), as one uint8 (C, H, W) picture.

    ``scale`` enlarges it by pixel repetition (nearest neighbour), so small
    images stay sharp: a 16x16 grid of 16-pixel digits is readable at scale 4.
    """
    from torchvision.utils import make_grid  # imported here: torchvision costs seconds at start-up

    nrow = nrow or max(1, math.isqrt(images.shape[0] - 1) + 1)
    grid = make_grid(images.detach().float().cpu().clamp(-1, 1), nrow=nrow, padding=padding,
                     normalize=True, value_range=(-1, 1))
    grid = grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)  # torchvision's save_image rounding
    if scale > 1:
        grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    return grid


def _picture(images: Tensor, nrow: int | None, scale: int):
    from PIL import Image

    if scale < 1 or int(scale) != scale:
        raise ValueError(f"scale must be a whole number >= 1, got {scale}")
    array = grid_image(images, nrow, int(scale)).permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def _write_atomically(path: Path, suffix: str, write) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_grid(images: Tensor, path: str | os.PathLike, nrow: int | None = None, scale: int = 1) -> Path:
    """Write images in [-1, 1] as one PNG grid, atomically (a temporary file renamed into place)."""
    picture = _picture(images, nrow, scale)
    return _write_atomically(Path(path), ".png", lambda tmp: picture.save(tmp, format="PNG"))


def save_gif(frames: Tensor, path: str | os.PathLike, nrow: int | None = None, scale: int = 1,
             fps: float = 10, bounce: bool = True) -> Path:
    """Write an animated GIF, looping forever: frame f is the grid of ``frames[f]`` (F, N, C, H, W).

    ``bounce`` plays the frames forth and back (0 .. F-1 .. 1), so a walk
    between two latents loops without a jump. Colour frames are reduced to
    256 colours each (the GIF format's limit); grey ones are exact.
    """
    if frames.ndim != 5 or frames.shape[0] < 1:
        raise ValueError(f"frames must be F x N x C x H x W, got shape {tuple(frames.shape)}")
    grey = frames.shape[2] == 1  # torchvision's grid repeats a grey channel three times: back to one
    pictures = [_picture(frame, nrow, scale).convert("L") if grey else _picture(frame, nrow, scale) for frame in frames]
    if bounce and len(pictures) > 2:
        pictures += pictures[-2:0:-1]
    duration = max(20, round(1000 / fps))  # milliseconds; browsers slow anything under 20 ms down

    def write(tmp):
        pictures[0].save(tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=duration, loop=0)

    return _write_atomically(Path(path), ".gif", write)
