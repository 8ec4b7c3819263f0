"""WGAN-GP's gradient penalty on interpolates of real and fake images."""

from __future__ import annotations

import torch

from gankit.core.errors import GankitError
from gankit.core.registry import component
from gankit.regularizers.base import Regularizer, input_gradients


@component("regularizers", "gp")
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
