"""Zero-centred gradient penalties: R1 on real images, R2 on fake images.

Both use StyleGAN2's and R3GAN's convention for γ: the penalty is
γ/2 · E‖∇D‖², the squared norm of D's gradient with respect to each input
image, averaged over the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gankit.core.errors import GankitError
from gankit.core.registry import component
from gankit.losses.base import discriminate
from gankit.regularizers.base import Regularizer


class _ZeroCentred(Regularizer):
    """γ/2 E[‖∇D(x)‖²] on one side's images, every ``every`` D updates (× every when lazy)."""

    name = ""  # "r1" / "r2": the stats' prefix and the messages' subject

    def __init__(self, gamma: float = 10.0, every: int = 1, adjust_optimizer: bool = True):
        if gamma < 0:
            raise GankitError(f"{self.name}: gamma must be >= 0, got {gamma}")
        if every < 1:
            raise GankitError(f"{self.name}: every must be a whole number >= 1 (1: every D update), got {every}")
        self.gamma = gamma
        self.every = every
        # every > 1 makes the penalty its own D update; StyleGAN2 then scales D's Adam lr and betas (mb_ratio)
        self.adjust_optimizer = adjust_optimizer

    def penalty(self, D, real, fake, step, *, real_labels=None, fake_labels=None):
        if not self.due(step):
            return None, {}  # lazy: not this step
        x, labels = (real, real_labels) if self.judges == "real" else (fake, fake_labels)
        x = x.detach().requires_grad_(True)
        return self.from_logits(x, discriminate(D, x, labels))

    def from_logits(self, x: Tensor, logits: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The penalty from D's ``logits`` for ``x`` (which requires grad), e.g. those of the loss's own pass."""
        (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)  # ∇ₓ D(x), each image its own
        sq = grad.flatten(1).square().sum(1)  # ‖∇D(x)‖² per image
        penalty = self.gamma / 2 * sq.mean() * self.every  # γ/2 E[‖∇D(x)‖²], × every when lazy
        return penalty, {self.name: penalty.detach(), f"{self.name}_grad_norm": sq.detach().sqrt().mean()}


@component("regularizers", "r1")
class R1Penalty(_ZeroCentred):
    """R1 (Mescheder et al. 2018): γ/2 E[‖∇D(x)‖²] on real images, γ as StyleGAN2 and R3GAN count it.

    ``every`` > 1 makes it lazy (Karras et al. 2020, StyleGAN2): computed only
    on D updates with ``step % every == 0``, as an update of its own after the
    main one, and multiplied by ``every`` there, so that on average it weighs
    what it would every step. D's Adam learning rate and betas are then
    adjusted as StyleGAN2 does (every / (every + 1); ``adjust_optimizer: false``
    keeps them as written).
    """

    name, judges = "r1", "real"


@component("regularizers", "r2")
class R2Penalty(_ZeroCentred):
    """R2: γ/2 E[‖∇D(G(z))‖²] on fake images, the twin of ``r1``, γ as R3GAN counts it.

    Mescheder et al. 2018; R3GAN (Huang et al. 2024) uses both. Same convention and laziness as ``r1``."""

    name, judges = "r2", "fake"
