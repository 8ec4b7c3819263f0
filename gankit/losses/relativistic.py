"""The relativistic losses: RpGAN (pairs) and RaGAN (averages)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.core.errors import GankitError
from gankit.core.registry import component
from gankit.losses.base import GANLoss, prob_stats


@component("losses", "relativistic")
class RelativisticLoss(GANLoss):
    """Relativistic GAN (Jolicoeur-Martineau 2019): D judges whether real data is
    more realistic than fake data. ``average=False``: RpGAN (real image i paired
    with fake image i); ``average=True``: RaGAN (against the other batch's mean).

    G's loss needs D's view of real images too: the loss declares
    ``needs_real_for_g``, and the trainer passes a real batch to ``g_loss`` as
    ``real=`` (and ``real_labels=``), scored by the current D, as R3GAN's
    ``AccumulateGeneratorGradients`` scores a real batch in G's step (with
    ``train.g_step: fresh``, a batch of its own). RpGAN ``pairs``: a
    conditional fake i is made with real i's class, and D scores both with it.
    """

    needs_real_for_g = True

    def __init__(self, average: bool = False):
        self.average = average
        self.pairs = not average  # RaGAN compares with the other batch's mean: no pairs

    def _pair(self, a: Tensor, b: Tensor) -> None:
        if not self.average and a.shape != b.shape:
            raise GankitError(f"relativistic (RpGAN) pairs real and fake images one to one, but got {a.shape[0]} "
                              f"real and {b.shape[0]} fake; use equal batches or loss.average: true (RaGAN)")

    def d_loss(self, D, real, fake, *, real_labels=None, fake_labels=None):
        r = self.logits(D, real, real_labels)
        f = self.logits(D, fake, fake_labels)
        self._pair(r, f)
        if self.average:
            # RaGAN: ½(-E[log σ(C(x) - E C(G(z)))] - E[log(1 - σ(C(G(z)) - E C(x)))])
            loss = 0.5 * (F.softplus(-(r - f.mean())).mean() + F.softplus(f - r.mean()).mean())
        else:
            # RpGAN: -E[log σ(C(x) - C(G(z)))]
            loss = F.softplus(-(r - f)).mean()
        return loss, {"loss_d": loss.detach(), **prob_stats(r, f)}

    def g_loss(self, D, fake, *, fake_labels=None, real=None, real_labels=None):
        if real is None:
            raise GankitError("relativistic: g_loss needs the real batch (real=...): G's objective pairs each fake "
                              "image with a real one")
        f = self.logits(D, fake, fake_labels)
        with torch.no_grad():  # real images do not depend on G: D's view of them is a constant here
            r = self.logits(D, real.detach(), real_labels)
        self._pair(r, f)
        if self.average:
            # RaGAN: ½(-E[log σ(C(G(z)) - E C(x))] - E[log(1 - σ(C(x) - E C(G(z))))])
            loss = 0.5 * (F.softplus(-(f - r.mean())).mean() + F.softplus(r - f.mean()).mean())
        else:
            # RpGAN: -E[log σ(C(G(z)) - C(x))]
            loss = F.softplus(-(f - r)).mean()
        return loss, {"loss_g": loss.detach(), "d_fake_after": torch.sigmoid(f.detach()).mean()}
