"""GAN losses, one family per file, each formula beside its code.

A loss subclasses :class:`GANLoss`: ``d_loss(D, real, fake, ...)`` and
``g_loss(D, fake, ...)`` call D themselves and return ``(loss, stats)``.
All work on D's raw outputs ("logits" C(x), shape (N,)). Stats: ``loss_d``,
``loss_g``, and D's view of the batches: ``d_real`` / ``d_fake`` = mean
σ(C(x)) (what the health monitor and the report read as D(x), D(G(z))), or the
raw mean output where that is the quantity the loss drives to a target
(LSGAN). WGAN's critic is not a probability, so it reports ``critic_real``,
``critic_fake`` and the ``wasserstein`` estimate instead.

Built in (each declared with ``@component("losses", name)`` in its file):
``bce`` (the tutorial's), ``minimax`` and ``nonsaturating``
(:mod:`~gankit.losses.logistic`), ``hinge``, ``wgan``, ``lsgan``,
``relativistic`` (RpGAN / RaGAN). A new built-in loss is one decorated class
in a new file here.
"""

from gankit.losses.base import GANLoss, Stats, discriminate, prob_stats
from gankit.losses.hinge import HingeLoss
from gankit.losses.logistic import BCELoss, MinimaxLoss, NonSaturatingLoss
from gankit.losses.lsgan import LSGANLoss
from gankit.losses.relativistic import RelativisticLoss
from gankit.losses.wgan import WGANLoss

__all__ = ["BCELoss", "GANLoss", "HingeLoss", "LSGANLoss", "MinimaxLoss", "NonSaturatingLoss", "RelativisticLoss",
           "Stats", "WGANLoss", "discriminate", "prob_stats"]
