"""Build a recipe's components from the registries, each checked against its contract.

    G = build_generator(recipe)          # also: build_discriminator, build_loss, build_dataset,
    regs = build_regularizers(recipe)    #       build_augment, resolve_device

Generators, discriminators and datasets receive ``image_size`` and
``channels`` from the recipe's ``data`` section when their signature accepts
them, so one setting keeps all three consistent. What a built component must
offer is :mod:`gankit.contracts`'; one that falls short is named here, with
its plugin, before the run uses it. Training, ``gankit validate``'s trial
build and ``gankit sample``/``eval`` all build through this module.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gankit import contracts
from gankit.core.errors import GankitError
from gankit.core.plugins import registry
from gankit.recipe.schema import Component, Recipe


def _build(kind: str, spec: Component, injected: dict[str, Any]) -> Any:
    return registry(kind).build_from_recipe(spec.name, injected, **spec.args)


def _shape(recipe: Recipe) -> dict[str, int]:
    return {"image_size": recipe.data.image_size, "channels": recipe.data.channels}


def meets(contract: type, obj: Any, kind: str, name: str, fix: str) -> Any:
    """``obj`` when it offers every attribute of ``contract`` (a Protocol), else a GankitError naming the gaps."""
    if isinstance(obj, contract):
        return obj
    members = {*contract.__annotations__, *(n for n, v in vars(contract).items() if callable(v))}
    missing = sorted(n for n in members if not n.startswith("_") and not hasattr(obj, n))
    entry = registry(kind).entry(name)
    raise GankitError(f"{registry(kind).singular} '{name}' ({entry.describe()}) does not meet "
                      f"gankit.contracts.{contract.__name__}: it has no {', '.join(missing)}; {fix}")


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


def build_loss(recipe: Recipe) -> contracts.Loss:
    return meets(contracts.Loss, _build("losses", recipe.loss, {}), "losses", recipe.loss.name,
                 "subclass gankit.losses.GANLoss")


def build_dataset(recipe: Recipe) -> torch.utils.data.Dataset:
    dataset = _build("datasets", recipe.data, _shape(recipe))
    if len(dataset) == 0:
        raise GankitError(f"dataset '{recipe.data.name}' is empty (data section: {recipe.data.args})")
    return dataset


def build_regularizers(recipe: Recipe) -> list[contracts.Regularizer]:
    """The recipe's ``regularizers``, each added to its player's loss (or its own update, when lazy)."""
    return [meets(contracts.Regularizer, _build("regularizers", spec, {}), "regularizers", spec.name,
                  "subclass gankit.regularizers.Regularizer (or declare player, every and adjust_optimizer)")
            for spec in recipe.regularizers]


def build_augment(recipe: Recipe) -> contracts.Augmentation | None:
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
