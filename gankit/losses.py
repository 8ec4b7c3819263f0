"""GAN losses. A loss computes both players' objectives and calls D itself.

Calling D inside the loss (rather than handing it D's outputs) is what lets
losses that need D's gradients with respect to its input, such as WGAN-GP or
R1, fit without changing the trainer.

A loss returns ``(total, stats)``: the scalar to minimise and a dict of
detached scalar tensors for logging (``loss_d``, ``d_real`` = mean D(x), ...).
Losses report values; they never call a logger.

Class-conditional discriminators (an int attribute ``num_classes``, called
``D(x, labels)``) fit the same interface: the trainer passes the labels as
keywords (``real_labels``, ``fake_labels``), and :func:`discriminate` calls
``D(x)`` or ``D(x, labels)``. Without labels every loss works as before.
More losses (minimax, nonsaturating, hinge, wgan, lsgan, relativistic) are in
:mod:`gankit.loss_zoo`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Stats = dict[str, Tensor]


def discriminate(D: nn.Module, x: Tensor, labels: Tensor | None = None) -> Tensor:
    """D's logits for ``x``, shape (N,): ``D(x)``, or ``D(x, labels)`` when labels are given."""
    out = D(x) if labels is None else D(x, labels)
    return out.reshape(-1)


class GANLoss:
    """Base class: subclasses implement both players' objectives.

    ``real_labels`` / ``fake_labels`` (int64, shape (N,)) are given only for a
    class-conditional D; pass them on to :meth:`logits`.
    """

    # D(x) or D(x, labels), flattened to (N,): the one way a loss calls D
    logits = staticmethod(discriminate)

    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor, *,
               real_labels: Tensor | None = None, fake_labels: Tensor | None = None) -> tuple[Tensor, Stats]:
        """Discriminator objective on a real batch and a (detached) fake batch."""
        raise NotImplementedError

    def g_loss(self, D: nn.Module, fake: Tensor, *, fake_labels: Tensor | None = None) -> tuple[Tensor, Stats]:
        """Generator objective on a fake batch (not detached)."""
        raise NotImplementedError


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
        }

    def g_loss(self, D, fake, *, fake_labels=None):
        logits = self.logits(D, fake, fake_labels)
        # -log D(G(z)): fake images labelled real (non-saturating)
        loss = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, self.real_label))
        return loss, {"loss_g": loss.detach(), "d_fake_after": torch.sigmoid(logits.detach()).mean()}
