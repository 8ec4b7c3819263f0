"""The loss interface: a loss computes both players' objectives and calls D itself.

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
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from gankit.core.resumable import Resumable

Stats = dict[str, Tensor]


def discriminate(D: nn.Module, x: Tensor, labels: Tensor | None = None) -> Tensor:
    """D's logits for ``x``, shape (N,): ``D(x)``, or ``D(x, labels)`` when labels are given."""
    out = D(x) if labels is None else D(x, labels)
    return out.reshape(-1)


class GANLoss(Resumable):
    """Base class: subclasses implement both players' objectives (state to resume: ``resumable``).

    ``real_labels`` / ``fake_labels`` (int64, shape (N,)) are given only for a
    class-conditional D; pass them on to :meth:`logits`.
    """

    # D(x) or D(x, labels), flattened to (N,): the one way a loss calls D
    logits = staticmethod(discriminate)
    # True: g_loss also needs D's view of real images, and the trainer passes the step's real batch
    # as g_loss(D, fake, fake_labels=..., real=..., real_labels=...) (RpGAN's G objective pairs them).
    needs_real_for_g: ClassVar[bool] = False

    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor, *,
               real_labels: Tensor | None = None, fake_labels: Tensor | None = None) -> tuple[Tensor, Stats]:
        """Discriminator objective on a real batch and a (detached) fake batch."""
        raise NotImplementedError

    def g_loss(self, D: nn.Module, fake: Tensor, *, fake_labels: Tensor | None = None) -> tuple[Tensor, Stats]:
        """Generator objective on a fake batch (not detached); a loss with ``needs_real_for_g`` also takes
        ``real=`` and ``real_labels=``."""
        raise NotImplementedError


def real_sign(r: Tensor) -> Tensor:
    """E[sign(C(x))] over the real batch: ADA's overfitting heuristic r_t reads it (``real_sign``)."""
    return r.detach().sign().mean()


def prob_stats(r: Tensor, f: Tensor) -> Stats:
    """D's view of both batches as probabilities: ``d_real`` = mean σ(C(x)), ``d_fake`` = mean σ(C(G(z))),
    and ``real_sign`` = E[sign(C(x))]."""
    return {"d_real": torch.sigmoid(r.detach()).mean(), "d_fake": torch.sigmoid(f.detach()).mean(),
            "real_sign": real_sign(r)}
