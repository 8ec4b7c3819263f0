"""The hinge loss of SAGAN and SNGAN."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gankit.core.registry import component
from gankit.losses.base import GANLoss, prob_stats


@component("losses", "hinge")
class HingeLoss(GANLoss):
    """The hinge loss (Lim & Ye 2017; Miyato et al. 2018, SNGAN)."""

    def d_loss(self, D, real, fake, *, real_labels=None, fake_labels=None):
        r = self.logits(D, real, real_labels)
        f = self.logits(D, fake, fake_labels)
        # E[max(0, 1 - C(x))] + E[max(0, 1 + C(G(z)))]
        loss = F.relu(1 - r).mean() + F.relu(1 + f).mean()
        return loss, {"loss_d": loss.detach(), **prob_stats(r, f)}

    def g_loss(self, D, fake, *, fake_labels=None):
        f = self.logits(D, fake, fake_labels)
        # -E[C(G(z))]
        loss = -f.mean()
        return loss, {"loss_g": loss.detach(), "d_fake_after": torch.sigmoid(f.detach()).mean()}
