"""Build a recipe's components from the registries.

Generators, discriminators and datasets receive ``image_size`` and
``channels`` from the recipe's ``data`` section when their signature accepts
them, so one setting keeps all three consistent.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gankit.core.errors import GankitError
from gankit.core.plugins import registry
from gankit.recipe.schema import Component, Recipe


def _build(kind: str, spec: Component, injected: dict[str, Any]) -> Any:
    return registry(kind).build_from_recipe(spec.name, injected, **spec.args)


def _shape(recipe: Recipe) -> dict[str, int]:
    return {"image_size": recipe.data.image_size, "channels": recipe.data.channels}


def build_generator(recipe: Recipe) -> nn.Module:
    G = _build("generators", recipe.generator, _shape(recipe))
    if not isinstance(getattr(G, "nz", None), int):
        raise GankitError(
            f"generator '{recipe.generator.name}' has no integer attribute 'nz' (its latent size); "
            "gankit draws z of shape (N, nz)"
        )
    return G


def build_discriminator(recipe: Recipe) -> nn.Module:
    return _build("discriminators", recipe.discriminator, _shape(recipe))


def build_loss(recipe: Recipe):
    return _build("losses", recipe.loss, {})


def build_dataset(recipe: Recipe) -> torch.utils.data.Dataset:
    dataset = _build("datasets", recipe.data, _shape(recipe))
    if len(dataset) == 0:
        raise GankitError(f"dataset '{recipe.data.name}' is empty (data section: {recipe.data.args})")
    return dataset


def build_training_data(recipe: Recipe, log=None) -> torch.utils.data.Dataset:
    """The dataset to train on: :func:`build_dataset`'s, or its uint8 cache when ``data.cache`` is on.

    A cache is built on first use (decoding with ``data.workers`` processes,
    following ``data.on_bad_image``) and reused afterwards; ``log`` receives
    one-line notices (default: stderr).
    """
    dataset = build_dataset(recipe)
    if recipe.data.cache:
        from gankit.data.cache import cache_dataset
        from gankit.data.identity import dataset_identity
        from gankit.eval.cache import cache_root

        d = recipe.data
        dataset = cache_dataset(dataset, dataset_identity(recipe.data), cache_root(d.cache_dir),
                                on_bad_image=d.on_bad_image, workers=d.workers, log=log)
    if recipe.data.mirror:  # the x-flipped copies (official --mirror); evaluation reads the dataset itself
        from gankit.data.mirror import Mirrored

        dataset = Mirrored(dataset)
    return dataset


def build_batches(recipe: Recipe, dataset: torch.utils.data.Dataset, sampler, device: torch.device,
                  generator: torch.Generator | None = None, batch_size: int | None = None):
    """Iterable of ``(images, labels, bad)`` batches of ``batch_size`` (default ``data.batch_size``: this
    process's share of it under torchrun is the feeder's to give) in ``sampler``'s order (a ResumableSampler).

    For a cached dataset a :class:`gankit.data.cached_loader.CachedBatches`
    (images already on ``device``); otherwise the DataLoader the trainer uses,
    with ``data.workers`` processes seeded from ``generator``.
    """
    from gankit.data.cache import CachedDataset
    from gankit.data.mirror import Mirrored

    d = recipe.data
    batch_size = batch_size or d.batch_size
    mirror = isinstance(dataset, Mirrored)
    cached = dataset.dataset if mirror else dataset
    if isinstance(cached, CachedDataset):
        from gankit.data.cached_loader import CachedBatches

        return CachedBatches(cached, batch_size, sampler, device, drop_last=d.drop_last, mirror=mirror)
    from torch.utils.data import DataLoader

    from gankit.data.common import collate

    from gankit.data.workers import loader_options

    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate, drop_last=d.drop_last,
        pin_memory=device.type == "cuda", generator=generator, **loader_options(d.workers),
    )


def build_regularizers(recipe: Recipe) -> list:
    """The recipe's ``regularizers``, each added to D's loss."""
    return [_build("regularizers", spec, {}) for spec in recipe.regularizers]


def build_augment(recipe: Recipe):
    """The recipe's ``augment`` (applied to D's real and fake inputs), or None."""
    return _build("augmentations", recipe.augment, {}) if recipe.augment is not None else None


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GankitError(f"device: '{name}' is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"device: '{name}' asked for, but CUDA is not available here; use device=cpu or auto")
    return device
