"""Class-conditional GANs: the convention and the label helpers the trainer and sampler use.

A conditional generator or discriminator has an integer attribute
``num_classes`` and takes the labels as a second argument: ``G(z, labels)``,
``D(x, labels)``, labels an int64 tensor of shape (N,) in [0, num_classes).
Both still work without labels (``G(z)`` draws the classes in turn,
``D(x)`` scores without the class term), so unconditional code paths and
the registry-parametrised tests keep working.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gankit.core.errors import DataError, GankitError


def num_classes(module: nn.Module) -> int | None:
    """The module's number of classes, or None when it is not class-conditional."""
    n = getattr(module, "num_classes", None)
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def is_conditional(module: nn.Module) -> bool:
    return num_classes(module) is not None


def cycle_labels(n: int, classes: int, device: torch.device | str | None = None) -> Tensor:
    """0, 1, ..., classes-1, 0, 1, ... (n labels): every class in turn."""
    return torch.arange(n, device=device) % classes


def class_grid_labels(classes: int, per_class: int, device: torch.device | str | None = None) -> Tensor:
    """Labels for a grid with one row per class: ``per_class`` 0s, then 1s, ... (classes × per_class).

    Save the images with ``nrow=per_class`` so that row k shows class k.
    """
    if classes < 1 or per_class < 1:
        raise ValueError(f"a class grid needs classes >= 1 and per_class >= 1, got {classes}, {per_class}")
    return torch.arange(classes, device=device).repeat_interleave(per_class)


def class_labels(n: int, classes: int, cls: int, device: torch.device | str | None = None) -> Tensor:
    """n labels, all ``cls`` (``gankit sample --class K``); an out-of-range class names the valid range."""
    if not 0 <= cls < classes:
        raise GankitError(f"--class {cls}: the generator has {classes} classes, 0 to {classes - 1}")
    return torch.full((n,), cls, dtype=torch.int64, device=device)


def check_labels(labels: Tensor, classes: int, dataset: str) -> None:
    """Stop with a clear error when a batch's labels don't fit a conditional model (call on CPU labels)."""
    labels = torch.as_tensor(labels)
    if labels.numel() == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0:
        raise DataError(f"dataset '{dataset}' has no class labels (label -1), but the generator or discriminator is "
                        f"class-conditional; use a labelled dataset (digits, mnist, cifar10, imagefolder with class "
                        f"folders) or an unconditional model")
    if high >= classes:
        raise DataError(f"dataset '{dataset}' has label {high}, but the model has num_classes: {classes}; "
                        f"set generator.num_classes and discriminator.num_classes to at least {high + 1}")


def check_pair(G: nn.Module, D: nn.Module) -> None:
    """A conditional G and a conditional D must agree on the number of classes."""
    g, d = num_classes(G), num_classes(D)
    if g is not None and d is not None and g != d:
        raise GankitError(f"generator.num_classes is {g} but discriminator.num_classes is {d}; set both to the "
                          f"dataset's number of classes")
