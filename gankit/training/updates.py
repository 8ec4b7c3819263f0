"""An optimizer update over accumulation rounds: backward passes, the non-finite guard, the fp16 loss scale.

    stats = self._update("discriminator", n, round_loss, grad_norms)   # round_loss(k, slice) -> (loss, stats)

:class:`Updates` is the part of :class:`gankit.training.step.GANStep` that
does not depend on what a phase computes: the rounds of a batch
(``train.accumulate``: their gradients add up, each under DDP's
``no_sync`` but the last), the other player frozen, backward under the
GradScaler, then the guard and the optimizer step. :class:`Tape` lets a
penalty take its gradient from the loss's own D pass.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

# guard(player, values, module) -> apply the update? Called after each update's backward passes, before the
# optimizer step, with the loss statistics and gradient norm; it may also raise to stop the run.
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


def no_sync(module: nn.Module, skip: bool = True) -> contextlib.AbstractContextManager:
    """DDP's ``no_sync()`` for a wrapped module when ``skip`` (its backward passes' gradients stay local)."""
    if skip and isinstance(module, nn.parallel.DistributedDataParallel):
        return module.no_sync()
    return contextlib.nullcontext()


class Tape:
    """D for one loss call, remembering its logits for the ``watched`` inputs (a penalty takes them)."""

    def __init__(self, D: nn.Module, watched: tuple[Tensor, ...]):
        self.D, self.watched, self.logits = D, watched, {}

    def __call__(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        out = self.D(x) if labels is None else self.D(x, labels)
        for i, w in enumerate(self.watched):
            if x is w:
                self.logits[i] = out
        return out

    def __getattr__(self, name: str):  # num_classes and the like: D's own
        return getattr(self.D, name)


class Mean:
    """Statistics averaged over an update's rounds, weighted by their images."""

    def __init__(self):
        self.sums: dict[str, Tensor] = {}
        self.count = 0

    def add(self, stats: dict[str, Tensor], n: int) -> None:
        for k, v in stats.items():
            v = torch.as_tensor(v).detach().float() * n
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.count += n

    def value(self) -> dict[str, Tensor]:
        return {k: v / self.count for k, v in self.sums.items()}


class Updates:
    """Each player's update over the rounds of a batch (GANStep's G, D, optimizers, scalers, guard, accumulate)."""

    def _update(self, player: str, n: int, round_loss: Callable, grad_norms: bool = False):
        """One optimizer step of ``player`` over the accumulation rounds of a batch of ``n``.

        ``round_loss(k, slice)`` gives round k's loss (None: nothing due) and
        stats; the rounds' gradients add up (each under DDP's ``no_sync`` but
        the last). Returns the stats averaged over the rounds, ``{}`` when
        nothing was due, None when the guard refused the update.
        """
        module = self.D if player == "discriminator" else self.G
        (self.opt_d if player == "discriminator" else self.opt_g).zero_grad(set_to_none=True)
        rounds, mean, total = self._rounds(n), Mean(), None
        for k, (sl, weight) in enumerate(rounds):
            with no_sync(module, k < len(rounds) - 1):
                loss, stats = round_loss(k, sl)
                if loss is None:
                    return {}
                self._backward(player, loss * weight)
            total = loss.detach() * weight if total is None else total + loss.detach() * weight
            mean.add(stats, sl.stop - sl.start)
        stats = mean.value()
        return stats if self._apply(player, total, stats, grad_norms) else None

    # ------------------------------------------------------------------------------------------------ the parts

    def _rounds(self, n: int) -> list[tuple[slice, float]]:
        """The accumulation rounds of a batch of ``n``: consecutive slices, each with its loss weight."""
        size = math.ceil(n / min(self.accumulate, n))
        slices = [slice(i, min(i + size, n)) for i in range(0, n, size)]
        if self.accumulate_mode == "sum":  # each round's mean adds its gradient (StyleGAN2-ADA's gain)
            return [(sl, 1.0) for sl in slices]
        return [(sl, (sl.stop - sl.start) / n) for sl in slices]  # the batch mean's gradient

    @contextlib.contextmanager
    def _frozen(self, player: str, frozen: bool = True):
        """``player``'s weights need no gradient inside (the other player's update), as the official loops do."""
        params = self._trainable[player] if frozen else []
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)

    def _backward(self, player: str, loss: Tensor) -> None:
        scaler = self.scaler_d if player == "discriminator" else self.scaler_g
        if not loss.requires_grad:  # a player with no trainable weight reached (a frozen G): nothing to learn
            return
        if scaler is None:
            loss.backward()
        else:  # fp16: backward on the scaled loss (small gradients would underflow)
            scaler.scale(loss).backward()

    def _apply(self, player: str, loss: Tensor, stats: dict[str, Tensor], grad_norms: bool) -> bool:
        """``player``'s optimizer step on the accumulated gradients, unless the guard refuses it (then False)."""
        module, opt, scaler = (self.D, self.opt_d, self.scaler_d) if player == "discriminator" else \
            (self.G, self.opt_g, self.scaler_g)
        p = player[0]  # "d" or "g"
        if scaler is not None:
            scaler.unscale_(opt)
        if grad_norms or self.guard is not None:
            stats[f"grad_norm_{p}"] = grad_norm(module)
        checked = {**stats, f"loss_{p}": loss}  # the update's whole objective, penalties included
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
