"""Build a recipe's components from the registries.

Generators, discriminators and datasets receive ``image_size`` and
``channels`` from the recipe's ``data`` section when their signature accepts
them, so one setting keeps all three consistent.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.plugins import registry
from gankit.recipe.components import accepts
from gankit.recipe.schema import Component, Recipe


def _build(kind: str, spec: Component, injected: dict[str, Any]) -> Any:
    reg = registry(kind)
    obj = reg.get(spec.name)
    kwargs = {k: v for k, v in injected.items() if accepts(obj, k)}
    kwargs.update(spec.args)
    try:
        return obj(**kwargs)
    except GankitError:
        raise
    except (ValueError, TypeError) as exc:
        # A component rejecting its arguments is a recipe problem, not a crash.
        raise GankitError(f"{reg.singular} '{spec.name}' rejected its arguments {kwargs}: {exc}") from None


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
