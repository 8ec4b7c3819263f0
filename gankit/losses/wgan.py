"""The Wasserstein loss of WGAN (pair it with the gp regulariser or a spectrally normalised D)."""

from __future__ import annotations

from gankit.core.registry import component
from gankit.losses.base import GANLoss, real_sign


@component("losses", "wgan")
class WGANLoss(GANLoss):
    """The Wasserstein loss (Arjovsky et al. 2017). D must be kept 1-Lipschitz:
    add the ``gp`` regulariser (WGAN-GP) or use a spectrally normalised D."""

    def d_loss(self, D, real, fake, *, real_labels=None, fake_labels=None):
        r = self.logits(D, real, real_labels)
        f = self.logits(D, fake, fake_labels)
        # E[C(G(z))] - E[C(x)]: minus the critic's estimate of the Wasserstein-1 distance
        loss = f.mean() - r.mean()
        return loss, {"loss_d": loss.detach(), "critic_real": r.detach().mean(), "critic_fake": f.detach().mean(),
                      "wasserstein": -loss.detach(), "real_sign": real_sign(r)}

    def g_loss(self, D, fake, *, fake_labels=None):
        f = self.logits(D, fake, fake_labels)
        # -E[C(G(z))]
        loss = -f.mean()
        return loss, {"loss_g": loss.detach(), "critic_fake_after": f.detach().mean()}
