"""The logistic losses: the tutorial's BCE, the original minimax game and its non-saturating form."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gankit.core.registry import component
from gankit.losses.base import GANLoss, prob_stats, real_sign


@component("losses", "bce")
class BCELoss(GANLoss):
    """The DCGAN tutorial's binary cross-entropy, on D's logits.

    D maximises log D(x) + log(1 - D(G(z))); G maximises log D(G(z)), the
    non-saturating form. D outputs a logit and the sigmoid lives here
    (``binary_cross_entropy_with_logits`` = Sigmoid + BCELoss, more stable);
    the training is the tutorial's.
    """

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0):
        self.real_label = real_label
        self.fake_label = fake_label

    def d_loss(self, D, real, fake, *, real_labels=None, fake_labels=None):
        logits_real = self.logits(D, real, real_labels)
        logits_fake = self.logits(D, fake, fake_labels)
        # -[log D(x)] with label 1, -[log(1 - D(G(z)))] with label 0
        loss_real = F.binary_cross_entropy_with_logits(logits_real, torch.full_like(logits_real, self.real_label))
        loss_fake = F.binary_cross_entropy_with_logits(logits_fake, torch.full_like(logits_fake, self.fake_label))
        total = loss_real + loss_fake
        return total, {
            "loss_d": total.detach(),
            "d_real": torch.sigmoid(logits_real.detach()).mean(),  # D(x)
            "d_fake": torch.sigmoid(logits_fake.detach()).mean(),  # D(G(z)) before D's step
            "real_sign": real_sign(logits_real),
        }

    def g_loss(self, D, fake, *, fake_labels=None):
        logits = self.logits(D, fake, fake_labels)
        # -log D(G(z)): fake images labelled real (non-saturating)
        loss = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, self.real_label))
        return loss, {"loss_g": loss.detach(), "d_fake_after": torch.sigmoid(logits.detach()).mean()}


class _LogisticD(GANLoss):
    """The original GAN's D objective (Goodfellow et al. 2014), on logits."""

    def d_loss(self, D, real, fake, *, real_labels=None, fake_labels=None):
        r = self.logits(D, real, real_labels)
        f = self.logits(D, fake, fake_labels)
        # -E[log σ(C(x))] - E[log(1 - σ(C(G(z))))] = E[softplus(-C(x))] + E[softplus(C(G(z)))]
        loss = F.softplus(-r).mean() + F.softplus(f).mean()
        return loss, {"loss_d": loss.detach(), **prob_stats(r, f)}


@component("losses", "minimax")
class MinimaxLoss(_LogisticD):
    """The original, saturating minimax game: G minimises log(1 - D(G(z))).

    Its gradient vanishes while D rejects G's samples confidently (early in
    training): kept for comparison, not for use.
    """

    def g_loss(self, D, fake, *, fake_labels=None):
        f = self.logits(D, fake, fake_labels)
        # E[log(1 - σ(C(G(z))))] = -E[softplus(C(G(z)))]
        loss = -F.softplus(f).mean()
        return loss, {"loss_g": loss.detach(), "d_fake_after": torch.sigmoid(f.detach()).mean()}


@component("losses", "nonsaturating")
class NonSaturatingLoss(_LogisticD):
    """The logistic non-saturating loss: G minimises -log D(G(z)) (softplus form, on logits)."""

    def g_loss(self, D, fake, *, fake_labels=None):
        f = self.logits(D, fake, fake_labels)
        # -E[log σ(C(G(z)))] = E[softplus(-C(G(z)))]
        loss = F.softplus(-f).mean()
        return loss, {"loss_g": loss.detach(), "d_fake_after": torch.sigmoid(f.detach()).mean()}
