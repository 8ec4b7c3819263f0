"""Discriminator regularisers: penalties added to D's loss, combinable with any loss.

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

Registered as ``gp`` and ``r1`` (by :mod:`gankit.builtins`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.losses import Stats, discriminate


class Regularizer:
    """Base class: :meth:`penalty` returns ``(weighted penalty or None, stats)``."""

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


class GradientPenalty(Regularizer):
    """WGAN-GP (Gulrajani et al. 2017): λ E[(‖∇D(x̂)‖₂ - 1)²] on random interpolates
    x̂ = ε x + (1 - ε) G(z), ε ~ U[0, 1] per image.

    ε comes from the global torch generator (the training's own stream, which
    checkpoints save and restore). A conditional D sees x̂ with the real
    images' labels.
    """

    def __init__(self, weight: float = 10.0):
        if weight < 0:
            raise GankitError(f"gp: weight must be >= 0, got {weight}")
        self.weight = weight

    def penalty(self, D, real, fake, step, *, real_labels=None, fake_labels=None):
        if real.shape != fake.shape:
            raise GankitError(f"gp interpolates real and fake images one to one, but got shapes "
                              f"{tuple(real.shape)} and {tuple(fake.shape)}")
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
        x_hat = eps * real.detach() + (1 - eps) * fake.detach()  # x̂ = ε x + (1 - ε) G(z)
        norm = input_gradients(D, x_hat, real_labels).flatten(1).norm(2, dim=1)  # ‖∇D(x̂)‖₂ per image
        penalty = self.weight * (norm - 1).pow(2).mean()  # λ E[(‖∇D(x̂)‖₂ - 1)²]
        return penalty, {"gp": penalty.detach(), "gp_grad_norm": norm.detach().mean()}


class R1Penalty(Regularizer):
    """R1 (Mescheder et al. 2018): γ/2 E[‖∇D(x)‖²] on real images.

    ``every`` > 1 makes it lazy (Karras et al. 2020, StyleGAN2): computed only
    on D updates with ``step % every == 0`` and multiplied by ``every`` there,
    so that on average it weighs what it would every step. (StyleGAN2 also
    adjusts Adam's learning rate and betas for the lazy steps; gankit does not.)
    """

    def __init__(self, gamma: float = 10.0, every: int = 1):
        if gamma < 0:
            raise GankitError(f"r1: gamma must be >= 0, got {gamma}")
        if every < 1:
            raise GankitError(f"r1: every must be a whole number >= 1 (1: every D update), got {every}")
        self.gamma = gamma
        self.every = every

    def penalty(self, D, real, fake, step, *, real_labels=None, fake_labels=None):
        if step % self.every:
            return None, {}  # lazy: not this step
        sq = input_gradients(D, real, real_labels).flatten(1).pow(2).sum(1)  # ‖∇D(x)‖² per image
        penalty = self.gamma / 2 * sq.mean() * self.every  # γ/2 E[‖∇D(x)‖²], × every when lazy
        return penalty, {"r1": penalty.detach(), "r1_grad_norm": sq.detach().sqrt().mean()}


def register_regularizers(regularizers) -> None:
    """Register the regularisers above into the ``regularizers`` registry."""
    regularizers.register("gp", GradientPenalty)
    regularizers.register("r1", R1Penalty)
