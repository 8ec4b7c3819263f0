"""The least-squares loss of LSGAN."""

from __future__ import annotations

from gankit.core.registry import component
from gankit.losses.base import GANLoss, real_sign


@component("losses", "lsgan")
class LSGANLoss(GANLoss):
    """Least squares (Mao et al. 2017) with the 0-1 coding: a = fake_label, b = c = real_label."""

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0):
        self.real_label = real_label
        self.fake_label = fake_label

    def d_loss(self, D, real, fake, *, real_labels=None, fake_labels=None):
        r = self.logits(D, real, real_labels)
        f = self.logits(D, fake, fake_labels)
        # ½E[(D(x) - b)²] + ½E[(D(G(z)) - a)²]
        loss = 0.5 * (r - self.real_label).pow(2).mean() + 0.5 * (f - self.fake_label).pow(2).mean()
        # D's outputs are regressed onto the labels: their means are D's reading, no sigmoid
        return loss, {"loss_d": loss.detach(), "d_real": r.detach().mean(), "d_fake": f.detach().mean(),
                      "real_sign": real_sign(r - (self.real_label + self.fake_label) / 2)}  # which side of the midpoint

    def g_loss(self, D, fake, *, fake_labels=None):
        f = self.logits(D, fake, fake_labels)
        # ½E[(D(G(z)) - c)²]
        loss = 0.5 * (f - self.real_label).pow(2).mean()
        return loss, {"loss_g": loss.detach(), "d_fake_after": f.detach().mean()}
