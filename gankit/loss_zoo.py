"""The common GAN losses, each with its formula beside the code.

All work on D's raw outputs ("logits" C(x), shape (N,)) and take the same
optional label keywords as :class:`gankit.losses.GANLoss`. Stats: ``loss_d``,
``loss_g``, and D's view of the batches: ``d_real`` / ``d_fake`` = mean
σ(C(x)) (what the health monitor and the report read as D(x), D(G(z))), or the
raw mean output where that is the quantity the loss drives to a target
(LSGAN). WGAN's critic is not a probability, so it reports ``critic_real``,
``critic_fake`` and the ``wasserstein`` estimate instead. The core's ``bce``
stays the tutorial's (:class:`gankit.losses.BCELoss`).

Registered as ``minimax``, ``nonsaturating``, ``hinge``, ``wgan``, ``lsgan``,
``relativistic`` (by :mod:`gankit.builtins`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.errors import GankitError
from gankit.losses import GANLoss, Stats


def _prob_stats(r: Tensor, f: Tensor) -> Stats:
    return {"d_real": torch.sigmoid(r.detach()).mean(), "d_fake": torch.sigmoid(f.detach()).mean()}


class _LogisticD(GANLoss):
    """The original GAN's D objective (Goodfellow et al. 2014), on logits."""

    def d_loss(self, D, real, fake, *, real_labels=None, fake_labels=None):
        r = self.logits(D, real, real_labels)
        f = self.logits(D, fake, fake_labels)
        # -E[log σ(C(x))] - E[log(1 - σ(C(G(z))))] = E[softplus(-C(x))] + E[softplus(C(G(z)))]
        loss = F.softplus(-r).mean() + F.softplus(f).mean()
        return loss, {"loss_d": loss.detach(), **_prob_stats(r, f)}


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


class NonSaturatingLoss(_LogisticD):
    """The logistic non-saturating loss: G minimises -log D(G(z)) (softplus form, on logits)."""

    def g_loss(self, D, fake, *, fake_labels=None):
        f = self.logits(D, fake, fake_labels)
        # -E[log σ(C(G(z)))] = E[softplus(-C(G(z)))]
        loss = F.softplus(-f).mean()
        return loss, {"loss_g": loss.detach(), "d_fake_after": torch.sigmoid(f.detach()).mean()}


class HingeLoss(GANLoss):
    """The hinge loss (Lim & Ye 2017; Miyato et al. 2018, SNGAN)."""

    def d_loss(self, D, real, fake, *, real_labels=None, fake_labels=None):
        r = self.logits(D, real, real_labels)
        f = self.logits(D, fake, fake_labels)
        # E[max(0, 1 - C(x))] + E[max(0, 1 + C(G(z)))]
        loss = F.relu(1 - r).mean() + F.relu(1 + f).mean()
        return loss, {"loss_d": loss.detach(), **_prob_stats(r, f)}

    def g_loss(self, D, fake, *, fake_labels=None):
        f = self.logits(D, fake, fake_labels)
        # -E[C(G(z))]
        loss = -f.mean()
        return loss, {"loss_g": loss.detach(), "d_fake_after": torch.sigmoid(f.detach()).mean()}


class WGANLoss(GANLoss):
    """The Wasserstein loss (Arjovsky et al. 2017). D must be kept 1-Lipschitz:
    add the ``gp`` regulariser (WGAN-GP) or use a spectrally normalised D."""

    def d_loss(self, D, real, fake, *, real_labels=None, fake_labels=None):
        r = self.logits(D, real, real_labels)
        f = self.logits(D, fake, fake_labels)
        # E[C(G(z))] - E[C(x)]: minus the critic's estimate of the Wasserstein-1 distance
        loss = f.mean() - r.mean()
        return loss, {"loss_d": loss.detach(), "critic_real": r.detach().mean(), "critic_fake": f.detach().mean(),
                      "wasserstein": -loss.detach()}

    def g_loss(self, D, fake, *, fake_labels=None):
        f = self.logits(D, fake, fake_labels)
        # -E[C(G(z))]
        loss = -f.mean()
        return loss, {"loss_g": loss.detach(), "critic_fake_after": f.detach().mean()}


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
        return loss, {"loss_d": loss.detach(), "d_real": r.detach().mean(), "d_fake": f.detach().mean()}

    def g_loss(self, D, fake, *, fake_labels=None):
        f = self.logits(D, fake, fake_labels)
        # ½E[(D(G(z)) - c)²]
        loss = 0.5 * (f - self.real_label).pow(2).mean()
        return loss, {"loss_g": loss.detach(), "d_fake_after": f.detach().mean()}


class RelativisticLoss(GANLoss):
    """Relativistic GAN (Jolicoeur-Martineau 2019): D judges whether real data is
    more realistic than fake data. ``average=False``: RpGAN (real image i paired
    with fake image i); ``average=True``: RaGAN (against the other batch's mean).

    G's loss needs D's view of real images too. ``g_loss`` takes them as
    ``real=`` (and ``real_labels=``); without them it reuses the real batch of
    the latest :meth:`d_loss` call (the trainer's D step just before), scored
    by the current D.
    """

    def __init__(self, average: bool = False):
        self.average = average
        self._last_real: tuple[Tensor, Tensor | None] | None = None

    def _pair(self, a: Tensor, b: Tensor) -> None:
        if not self.average and a.shape != b.shape:
            raise GankitError(f"relativistic (RpGAN) pairs real and fake images one to one, but got {a.shape[0]} "
                              f"real and {b.shape[0]} fake; use equal batches or loss.average: true (RaGAN)")

    def d_loss(self, D, real, fake, *, real_labels=None, fake_labels=None):
        self._last_real = (real.detach(), real_labels)
        r = self.logits(D, real, real_labels)
        f = self.logits(D, fake, fake_labels)
        self._pair(r, f)
        if self.average:
            # RaGAN: ½(-E[log σ(C(x) - E C(G(z)))] - E[log(1 - σ(C(G(z)) - E C(x)))])
            loss = 0.5 * (F.softplus(-(r - f.mean())).mean() + F.softplus(f - r.mean()).mean())
        else:
            # RpGAN: -E[log σ(C(x) - C(G(z)))]
            loss = F.softplus(-(r - f)).mean()
        return loss, {"loss_d": loss.detach(), **_prob_stats(r, f)}

    def g_loss(self, D, fake, *, fake_labels=None, real=None, real_labels=None):
        if real is None:
            if self._last_real is None:
                raise GankitError("relativistic: g_loss needs the real batch (real=...) or a d_loss call before it")
            real, real_labels = self._last_real
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


def register_losses(losses) -> None:
    """Register the losses above into the ``losses`` registry."""
    losses.register("minimax", MinimaxLoss)
    losses.register("nonsaturating", NonSaturatingLoss)
    losses.register("hinge", HingeLoss)
    losses.register("wgan", WGANLoss)
    losses.register("lsgan", LSGANLoss)
    losses.register("relativistic", RelativisticLoss)
