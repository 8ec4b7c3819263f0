"""One GAN training iteration, as in the PyTorch DCGAN tutorial (``dcgan/main.py``).

With the recipe's defaults it is exactly the tutorial's step: one D update on
a real batch and ``fake.detach()``, then one G update on the same fakes. The
recipe can add D updates per G update (``train.d_steps``), regularisers,
differentiable augmentation of D's inputs (``augment``), class labels for
conditional models and an EMA of G.

- **Augmentation** is part of what D sees (:class:`AugmentedD`): the loss and
  the regularisers call D on un-augmented images and each call draws its own
  transforms, so R1 is the gradient with respect to the real image itself,
  through the augmentation (as StyleGAN2-ADA computes it).
- **Regularisers** that run every update are added to their player's loss; a
  lazy one (``every`` > 1: StyleGAN2's lazy R1, path length) is its own
  update on the steps it is due, after the main one (StyleGAN2's "Dreg" and
  "Greg" phases), which is why its player's Adam settings are adjusted
  (:func:`gankit.training.players.lazy_ratio`).
- **Speed** (:mod:`gankit.training.speed`): forward passes and losses run
  under ``autocast`` (bf16 or fp16), backward passes outside it; with fp16
  each player has a GradScaler. Regularisers run in fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from gankit.contracts import Adaptive, HasProbability
from gankit.nn.conditional import is_conditional, num_classes

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


def _no_sync(module: nn.Module) -> contextlib.AbstractContextManager:
    """DDP's ``no_sync()`` for a wrapped module (its forward passes' gradients stay local)."""
    return module.no_sync() if isinstance(module, nn.parallel.DistributedDataParallel) else contextlib.nullcontext()


class AugmentedD(nn.Module):
    """D as the losses and regularisers see it: ``D(augment(x))``, each call its own draws."""

    def __init__(self, D: nn.Module, augment: Callable, generator: torch.Generator | None):
        super().__init__()
        self.D, self.augment, self.generator = D, augment, generator
        if is_conditional(D):
            self.num_classes = num_classes(D)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        x = self.augment(x, generator=self.generator)
        return self.D(x) if labels is None else self.D(x, labels)


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
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext  # train.precision
    scaler_d: torch.amp.GradScaler | None = None  # fp16: each player's loss scale
    scaler_g: torch.amp.GradScaler | None = None
    channels_last: bool = False  # real batches in NHWC, like the models' weights
    images_per_step: int = 1  # processes under torchrun: the EMA counts every rank's images
    # Under torchrun, the mean over the ranks of a dict of scalars: ADA's controller reads every rank's batch,
    # so that all ranks keep one p (as the official code's collected statistics do).
    across_ranks: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None

    def __post_init__(self):
        self.nz = self.G.nz
        self.classes = num_classes(self.G)
        self.labelled_d = is_conditional(self.D)
        self.seen_by_d = AugmentedD(self.D, self.augment, self.aug_generator) if self.augment is not None else self.D
        regs = {"discriminator": [], "generator": []}
        for reg in self.regularizers:
            regs[reg.player].append(reg)  # declared by every regulariser (gankit.contracts.Regularizer)
        lazy = lambda r: r.every > 1  # noqa: E731
        self.d_regs, self.d_lazy = [r for r in regs["discriminator"] if not lazy(r)], [r for r in regs["discriminator"] if lazy(r)]
        self.g_regs = regs["generator"]  # generator regularisers run as their own update (path length)

    def _labels(self, **labels: Tensor | None) -> dict:
        # Only a class-conditional D is given labels, so losses written without them keep working.
        return labels if self.labelled_d else {}

    def _fake(self, n: int, device: torch.device) -> tuple[Tensor, Tensor | None]:
        z = torch.randn(n, self.nz, device=device)
        if self.classes is None:
            return self.G(z), None
        labels = torch.randint(self.classes, (n,), device=device)
        return self.G(z, labels), labels

    def _optimize(self, player: str, loss: Tensor, stats: dict[str, Tensor], grad_norms: bool) -> bool:
        """Backward, then ``player``'s optimizer step unless the guard refuses it (then False)."""
        module, opt, scaler = (self.D, self.opt_d, self.scaler_d) if player == "discriminator" else \
            (self.G, self.opt_g, self.scaler_g)
        p = player[0]  # "d" or "g"
        if scaler is None:
            loss.backward()
        else:  # fp16: backward on the scaled loss (small gradients would underflow), then unscale in place
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        if grad_norms or self.guard is not None:
            stats[f"grad_norm_{p}"] = grad_norm(module)
        checked = {**stats, f"loss_{p}": loss.detach()}
        if scaler is not None:
            # An overflowed fp16 gradient is routine: scaler.step skips the update and lowers the scale.
            # The losses are still checked: a non-finite loss is divergence, not overflow.
            checked.pop(f"grad_norm_{p}", None)
        applied = self.guard is None or self.guard(player, checked, module)
        if not applied:
            opt.zero_grad(set_to_none=True)
        elif scaler is None:
            opt.step()
        else:
            scaler.step(opt)
        if scaler is not None:
            scaler.update()  # also after a refused update: unscale_ above must be followed by an update
        return applied

    def _penalties(self, regs, stats, *args, **labels) -> Tensor | None:
        """The sum of ``regs``' penalties due at this step (None when none is), their stats into ``stats``."""
        total = None
        for reg in regs:
            penalty, reg_stats = reg.penalty(*args, **labels)
            if penalty is not None:
                total = penalty if total is None else total + penalty
                stats.update(reg_stats)
        return total

    def d_update(self, real: Tensor, real_labels: Tensor | None, d_update: int, grad_norms: bool):
        """One D update; returns (stats or None if skipped, the fakes and their labels for G)."""
        ############################
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        ############################
        self.opt_d.zero_grad(set_to_none=True)
        with self.autocast():
            fake, fake_labels = self._fake(real.shape[0], real.device)
            # D sees the real batch and the fake batch separately (BatchNorm statistics per batch);
            # fake.detach(): this update must not reach G.
            labels = self._labels(real_labels=real_labels, fake_labels=fake_labels)
            loss_d, stats = self.loss.d_loss(self.seen_by_d, real, fake.detach(), **labels)
        stats = {"loss_d": loss_d.detach(), **(stats or {})}  # a plugin loss may report nothing: log its value
        # In fp32, outside autocast: a gradient of a gradient underflows fp16 unless scaled, and a scaled
        # one that overflows makes the penalty itself inf, which the guard would take for divergence.
        penalty = self._penalties(self.d_regs, stats, self.seen_by_d, real.float(), fake.detach().float(), d_update,
                                  **labels)
        if penalty is not None:
            loss_d = loss_d + penalty
        if not self._optimize("discriminator", loss_d, stats, grad_norms):
            return None, fake, fake_labels
        if isinstance(self.augment, Adaptive):  # ADA: p follows D's view of the real batch (every rank's)
            seen = {k: v for k, v in stats.items() if k == "real_sign"}
            if self.across_ranks is not None:
                seen = self.across_ranks(seen)
            self.augment.observe(seen, real.shape[0] * self.images_per_step)
        if self.d_lazy:  # StyleGAN2's "Dreg": a lazy penalty is its own update, on the steps it is due
            self.opt_d.zero_grad(set_to_none=True)
            reg_stats: dict[str, Tensor] = {}
            penalty = self._penalties(self.d_lazy, reg_stats, self.seen_by_d, real.float(), fake.detach().float(),
                                      d_update, **labels)
            if penalty is not None:
                if not self._optimize("discriminator", penalty, reg_stats, False):
                    return None, fake, fake_labels
                stats.update(reg_stats)
        return stats, fake, fake_labels

    def g_update(self, fake: Tensor, fake_labels: Tensor | None, step: int, grad_norms: bool,
                 real: Tensor | None = None, real_labels: Tensor | None = None):
        """One G update on ``fake`` (not detached); returns stats or None if skipped."""
        ############################
        # (2) Update G network: maximize log(D(G(z)))
        ############################
        self.opt_g.zero_grad(set_to_none=True)
        extra = {}
        if self.loss.needs_real_for_g:  # RpGAN pairs each fake with a real image
            extra = {"real": real, **({"real_labels": real_labels} if self.labelled_d else {})}
        # The same fakes, now through the freshly updated D and with gradients into G. Under DDP, D's
        # gradients from this pass are not averaged across ranks: the next D update discards them.
        with self.autocast(), _no_sync(self.D):
            loss_g, stats = self.loss.g_loss(self.seen_by_d, fake, **self._labels(fake_labels=fake_labels), **extra)
        stats = {"loss_g": loss_g.detach(), **(stats or {})}
        if not self._optimize("generator", loss_g, stats, grad_norms):
            return None
        if self.g_regs:  # StyleGAN2's "Greg": path-length regularisation, its own update when due
            self.opt_g.zero_grad(set_to_none=True)
            reg_stats: dict[str, Tensor] = {}
            penalty = self._penalties(self.g_regs, reg_stats, self.G, fake.shape[0], step - 1, fake.device)
            if penalty is not None and self._optimize("generator", penalty, reg_stats, False):
                stats.update(reg_stats)
        if self.ema is not None:
            self.ema.update(self.G, step, fake.shape[0] * self.images_per_step)
        return stats

    def __call__(self, batches: list[tuple[Tensor, Tensor | None]], step: int, grad_norms: bool = False):
        """``len(batches)`` D updates (one per real batch), then one G update on the last fakes.

        ``step`` is the number of G updates done before this one. Returns the
        detached stats, or None when an update was skipped (non-finite values).
        """
        stats: dict[str, Tensor] = {}
        for i, (real, labels) in enumerate(batches):
            if self.channels_last:  # as D's weights; else each of D's calls on it would convert its layout
                real = real.contiguous(memory_format=torch.channels_last)
            d_stats, fake, fake_labels = self.d_update(real, labels, step * len(batches) + i, grad_norms)
            if d_stats is None:
                return None
            stats.update(d_stats)
        g_stats = self.g_update(fake, fake_labels, step + 1, grad_norms, real, labels)
        if g_stats is None:
            return None
        stats.update(g_stats)
        if isinstance(self.augment, HasProbability):
            stats["aug_p"] = torch.tensor(float(self.augment.p))
        return stats


def gan_step(G, D, loss, opt_g, opt_d, real: Tensor, grad_norms: bool = False, guard: Guard | None = None):
    """The tutorial's step on one real batch (see :class:`GANStep`); returns detached stats or None."""
    return GANStep(G, D, loss, opt_g, opt_d, guard=guard)([(real, None)], 0, grad_norms)
