"""One GAN training iteration, as in the PyTorch DCGAN tutorial (``dcgan/main.py``).

With the recipe's defaults it is exactly the tutorial's step: one D update on
a real batch and ``fake.detach()``, then one G update on the same fakes. The
recipe can add D updates per G update (``train.d_steps``), regularisers on
D's loss (``regularizers``), differentiable augmentation of D's inputs
(``augment``), class labels for conditional models and an EMA of G.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from gankit.conditional import is_conditional, num_classes

# guard(player, values, module) -> apply the update? Called after each backward, before the optimizer
# step, with the loss statistics and gradient norm; it may also raise to stop the run.
Guard = Callable[[str, dict[str, Tensor], nn.Module], bool]


def grad_norm(module: nn.Module) -> Tensor:
    """The L2 norm of all of ``module``'s gradients together (non-finite if any gradient is)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]  # leaf gradients: no graph to detach
    if not grads:
        return torch.zeros(())
    try:  # per-tensor norms in one fused kernel, then their norm: no copy of the gradients
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    except RuntimeError:  # gradients on several devices or of several dtypes
        return torch.nn.utils.get_total_norm(grads)


@dataclass
class GANStep:
    """The players, their optimizers and everything the recipe adds to the tutorial's step."""

    G: nn.Module
    D: nn.Module
    loss: object
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    regularizers: list = field(default_factory=list)
    augment: Callable | None = None
    aug_generator: torch.Generator | None = None  # augmentation draws its own stream (saved in checkpoints)
    ema: object | None = None
    guard: Guard | None = None

    def __post_init__(self):
        self.nz = self.G.nz
        self.classes = num_classes(self.G)
        self.labelled_d = is_conditional(self.D)

    def _aug(self, x: Tensor) -> Tensor:
        return x if self.augment is None else self.augment(x, generator=self.aug_generator)

    def _labels(self, **labels: Tensor | None) -> dict:
        # Only a class-conditional D is given labels, so losses written without them keep working.
        return labels if self.labelled_d else {}

    def _fake(self, n: int, device: torch.device) -> tuple[Tensor, Tensor | None]:
        z = torch.randn(n, self.nz, device=device)
        if self.classes is None:
            return self.G(z), None
        labels = torch.randint(self.classes, (n,), device=device)
        return self.G(z, labels), labels

    def d_update(self, real: Tensor, real_labels: Tensor | None, d_update: int, grad_norms: bool):
        """One D update; returns (stats or None if skipped, the fakes and their labels for G)."""
        ############################
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        ############################
        fake, fake_labels = self._fake(real.shape[0], real.device)
        self.opt_d.zero_grad(set_to_none=True)
        # D sees the real batch and the fake batch separately (BatchNorm statistics per batch);
        # fake.detach(): this update must not reach G.
        real_in, fake_in = self._aug(real), self._aug(fake.detach())
        labels = self._labels(real_labels=real_labels, fake_labels=fake_labels)
        loss_d, stats = self.loss.d_loss(self.D, real_in, fake_in, **labels)
        for reg in self.regularizers:
            penalty, reg_stats = reg.penalty(self.D, real_in, fake_in, d_update, **labels)
            if penalty is not None:
                loss_d = loss_d + penalty
                stats.update(reg_stats)
        loss_d.backward()
        if grad_norms or self.guard is not None:
            stats["grad_norm_d"] = grad_norm(self.D)
        if self.guard is not None and not self.guard("discriminator", {**stats, "loss_d": loss_d.detach()}, self.D):
            self.opt_d.zero_grad(set_to_none=True)
            return None, fake, fake_labels
        self.opt_d.step()
        return stats, fake, fake_labels

    def g_update(self, fake: Tensor, fake_labels: Tensor | None, step: int, grad_norms: bool):
        """One G update on ``fake`` (not detached); returns stats or None if skipped."""
        ############################
        # (2) Update G network: maximize log(D(G(z)))
        ############################
        self.opt_g.zero_grad(set_to_none=True)
        # The same fakes, now through the freshly updated D and with gradients into G.
        loss_g, stats = self.loss.g_loss(self.D, self._aug(fake), **self._labels(fake_labels=fake_labels))
        loss_g.backward()
        if grad_norms or self.guard is not None:
            stats["grad_norm_g"] = grad_norm(self.G)
        if self.guard is not None and not self.guard("generator", {**stats, "loss_g": loss_g.detach()}, self.G):
            self.opt_g.zero_grad(set_to_none=True)
            return None
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update(self.G, step, fake.shape[0])
        return stats

    def __call__(self, batches: list[tuple[Tensor, Tensor | None]], step: int, grad_norms: bool = False):
        """``len(batches)`` D updates (one per real batch), then one G update on the last fakes.

        ``step`` is the number of G updates done before this one. Returns the
        detached stats, or None when an update was skipped (non-finite values).
        """
        stats: dict[str, Tensor] = {}
        for i, (real, labels) in enumerate(batches):
            d_stats, fake, fake_labels = self.d_update(real, labels, step * len(batches) + i, grad_norms)
            if d_stats is None:
                return None
            stats.update(d_stats)
        g_stats = self.g_update(fake, fake_labels, step + 1, grad_norms)
        if g_stats is None:
            return None
        stats.update(g_stats)
        return stats


def gan_step(G, D, loss, opt_g, opt_d, real: Tensor, nz: int, grad_norms: bool = False, guard: Guard | None = None):
    """The tutorial's step on one real batch (see :class:`GANStep`); returns detached stats or None."""
    return GANStep(G, D, loss, opt_g, opt_d, guard=guard)([(real, None)], 0, grad_norms)
