"""The regulariser interface: a penalty added to D's loss, combinable with any loss.

A regulariser is a small object with one method::

    penalty, stats = reg.penalty(D, real, fake, step, real_labels=None, fake_labels=None)
    if penalty is not None:
        loss_d = loss_d + penalty

``penalty`` is a scalar tensor (already weighted) or None when a lazy
regulariser skips this step; ``stats`` are detached scalars to log. ``step``
counts D updates (0-based): lazy regularisers run when ``step % every == 0``.
Each call runs D once more on its own input (in training mode, like the
loss's calls), with ``create_graph=True`` so the penalty's gradient reaches
D's weights.

A regulariser declares whose loss it joins (``player``) and how often
(``every``; more than 1 makes it lazy), as :class:`gankit.contracts.Regularizer`
asks; state it keeps across a resume it names in ``resumable``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from gankit.core.resumable import Resumable
from gankit.losses.base import Stats, discriminate


class Regularizer(Resumable):
    """Base class: :meth:`penalty` returns ``(weighted penalty or None, stats)``."""

    # The images whose D gradients it penalises, and so whose labels a conditional D is given:
    # "real" (r1; gp's interpolates take the real labels) or "fake" (r2).
    judges: ClassVar[str] = "real"
    player: ClassVar[str] = "discriminator"  # whose loss it joins
    every: int = 1  # D updates between penalties; > 1: lazy, its own update when due
    adjust_optimizer: bool = True  # lazy: scale the player's Adam settings as StyleGAN2 does

    def penalty(self, D: nn.Module, real: Tensor, fake: Tensor, step: int, *,
                real_labels: Tensor | None = None, fake_labels: Tensor | None = None) -> tuple[Tensor | None, Stats]:
        raise NotImplementedError


def input_gradients(D: nn.Module, x: Tensor, labels: Tensor | None = None) -> Tensor:
    """∇ₓ D(x) for each image (shape of ``x``), differentiable with respect to D's weights."""
    x = x.detach().requires_grad_(True)
    out = discriminate(D, x, labels)
    # Images are independent through D's sum, so one backward gives every image's own gradient
    # (except across BatchNorm's batch statistics, which couple images in training mode).
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad
