"""One GAN training iteration: the DCGAN tutorial's (``dcgan/main.py``), or as StyleGAN2-ADA and R3GAN train.

With the recipe's defaults it is exactly the tutorial's step: one D update on
a real batch and ``fake.detach()``, then one G update on the same fakes. The
recipe's ``train`` section shapes it as the families' authors do:

- ``g_step: fresh``: G's update draws its own z (and, for a loss that scores
  reals in G's update, takes its own real batch: R3GAN's 1,024 reals per
  512-image step); ``reuse`` is the tutorial's.
- ``order: g_first``: StyleGAN2-ADA's phases Gmain, Greg, Dmain, Dreg;
  ``d_first``: Dmain, Dreg, Gmain, Greg (the tutorial, R3GAN).
- ``accumulate: N``: each update is N rounds of the process's batch, their
  gradients accumulated (``accumulate_mode``: mean, or sum as StyleGAN2-ADA).
- ``d_steps``: D updates per G update, each on a fresh real batch.

What the step always does, as the official loops do:

- **Latents** come from :attr:`latents`, asked for by phase (``Gmain``,
  ``Greg``, ``Dmain``): a fresh z for each. Fake class labels are the paired
  reals' when the loss pairs them (RpGAN: D scores real i and fake i with
  one class), else drawn from the dataset's labels.
- **Penalties that share the loss's inputs** (R1 on the real batch, R2 on
  the fakes) are taken from the loss's own D pass (through :class:`Tape`):
  no extra D pass and no second augmentation draw. Others (WGAN-GP's
  interpolates) run D on their own input. A lazy one (``every`` > 1:
  StyleGAN2's lazy R1, path length) is its own update on the steps it is
  due (the "Dreg"/"Greg" phases), which is why its player's Adam settings
  are adjusted (:func:`gankit.training.players.lazy_ratio`).
- **Augmentation** is part of what D sees (:class:`AugmentedD`): each call
  its own draws, from :attr:`aug_generator` (a generator, or given draws),
  so R1 is the gradient with respect to the real image itself, through the
  augmentation. ADA's controller sees D's signs on every real pass (a lazy
  R1's too) and moves p after the iteration's last update.
- The player not being updated is frozen (no gradients for its weights);
  G's forward pass for D's update runs without a graph unless G reuses it.
- **Speed** (:mod:`gankit.training.speed`): forward passes and losses run
  under ``autocast`` (bf16 or fp16), backward passes outside it; with fp16
  each player has a GradScaler. Penalties are taken in fp32: with a reduced
  precision they keep their own fp32 pass (``share_penalties`` off).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from gankit.losses.base import discriminate
from gankit.nn.conditional import is_conditional, num_classes
from gankit.training.feeding import Latents

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


def _no_sync(module: nn.Module, skip: bool = True) -> contextlib.AbstractContextManager:
    """DDP's ``no_sync()`` for a wrapped module when ``skip`` (its backward passes' gradients stay local)."""
    if skip and isinstance(module, nn.parallel.DistributedDataParallel):
        return module.no_sync()
    return contextlib.nullcontext()


class AugmentedD(nn.Module):
    """D as the losses and regularisers see it: ``D(augment(x))``, each call its own draws from ``source()``."""

    def __init__(self, D: nn.Module, augment: Callable, source: Callable[[], object]):
        super().__init__()
        self.D, self.augment, self.source = D, augment, source
        if is_conditional(D):
            self.num_classes = num_classes(D)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        x = self.augment(x, generator=self.source())
        return self.D(x) if labels is None else self.D(x, labels)


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


class _Mean:
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
    # augmentation draws its own stream (saved in checkpoints), or given draws (gankit.augment.draws.ReplayedDraws)
    aug_generator: object | None = None
    ema: object | None = None
    guard: Guard | None = None
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext  # train.precision
    scaler_d: torch.amp.GradScaler | None = None  # fp16: each player's loss scale
    scaler_g: torch.amp.GradScaler | None = None
    channels_last: bool = False  # real batches in NHWC, like the models' weights
    images_per_step: int = 1  # processes under torchrun: the EMA and ADA count every rank's images
    # Under torchrun, the mean over the ranks of a dict of scalars: ADA's controller reads every rank's batch,
    # so that all ranks keep one p (as the official code's collected statistics do).
    across_ranks: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None
    g_step: str = "reuse"  # train.g_step
    order: str = "d_first"  # train.order
    accumulate: int = 1  # train.accumulate
    accumulate_mode: str = "mean"  # train.accumulate_mode
    latents: object | None = None  # z, fake labels, probes by phase (default: the global stream)
    share_penalties: bool = True  # R1/R2 from the loss's own D pass (fp32 runs)

    def __post_init__(self):
        self.nz = self.G.nz
        self.classes = num_classes(self.G)
        self.labelled_d = is_conditional(self.D)
        if self.latents is None:
            self.latents = Latents(self.nz, self.classes)
        self.seen_by_d = AugmentedD(self.D, self.augment, lambda: self.aug_generator) \
            if self.augment is not None else self.D
        regs = {"discriminator": [], "generator": []}
        for reg in self.regularizers:
            regs[getattr(reg, "player", "discriminator")].append(reg)
        lazy = lambda r: getattr(r, "every", 1) > 1  # noqa: E731
        self.d_regs = [r for r in regs["discriminator"] if not lazy(r)]
        self.d_lazy = [r for r in regs["discriminator"] if lazy(r)]
        self.g_regs = regs["generator"]  # generator regularisers run as their own update (path length)
        self.pairs = bool(getattr(self.loss, "pairs", False))
        self.g_scores_reals = bool(getattr(self.loss, "needs_real_for_g", False))
        # The weights each player trains (Freeze-D's frozen layers stay frozen when the player is thawed).
        self._trainable = {"generator": [p for p in self.G.parameters() if p.requires_grad],
                           "discriminator": [p for p in self.D.parameters() if p.requires_grad]}

    @classmethod
    def from_recipe(cls, recipe, players, regularizers: list, device: torch.device, world=None,
                    latents: object | None = None, aug_generator: object | None = None) -> GANStep:
        """The step a recipe trains with: its loss and augmentation built from the registries, ``players``
        (their models, optimizers, scalers and EMA), the recipe's ``train`` settings; under torchrun
        (``world``) G and D train through DDP wrappers. ``latents`` and ``aug_generator`` are the step's
        random sources (default: the global stream)."""
        from gankit.training import speed
        from gankit.training.distributed import World, wrap
        from gankit.training.parts import build_augment, build_loss

        r, t = recipe, recipe.train
        world = world or World()
        return cls(wrap(players.G, device, world, t.sync_batchnorm), wrap(players.D, device, world, t.sync_batchnorm),
                   build_loss(r), players.opt_g, players.opt_d, regularizers=regularizers, augment=build_augment(r),
                   aug_generator=aug_generator, ema=players.ema,
                   autocast=lambda: speed.autocast(t.precision, device), scaler_g=players.scaler_g,
                   scaler_d=players.scaler_d, channels_last=t.channels_last, images_per_step=world.size,
                   across_ranks=world.mean if world.distributed else None, g_step=t.g_step, order=t.order,
                   accumulate=t.accumulate, accumulate_mode=t.accumulate_mode, latents=latents,
                   share_penalties=t.precision == "fp32")

    @property
    def g_takes_batch(self) -> bool:
        """Whether G's update takes a real batch of its own (the group's last)."""
        return self.g_step == "fresh" and self.g_scores_reals

    def images(self, batches: list[tuple[Tensor, Tensor | None]]) -> int:
        """The images a step trains D on, this process's (what the images-seen clock counts)."""
        d_batches = batches[:-1] if self.g_takes_batch else batches
        return sum(real.shape[0] for real, _ in d_batches)

    # ------------------------------------------------------------------------------------------ the iteration

    def __call__(self, batches: list[tuple[Tensor, Tensor | None]], step: int, grad_norms: bool = False):
        """D updates (one per D batch) and one G update, in the recipe's order; then EMA and ADA.

        ``batches`` are the step's real batches: one per D update, then G's
        own when :attr:`g_takes_batch`. ``step`` is the number of G updates
        done before this one. Returns the detached stats, or None when an
        update was skipped (non-finite values).
        """
        if self.channels_last:  # as D's weights; else each of D's calls on them would convert their layout
            batches = [(real.contiguous(memory_format=torch.channels_last), labels) for real, labels in batches]
        d_batches = batches[:-1] if self.g_takes_batch else batches
        g_batch = batches[-1]
        stats: dict[str, Tensor] = {}
        if self.order == "g_first":  # StyleGAN2-ADA: Gmain, Greg, then Dmain, Dreg
            g_stats = self.g_update(g_batch, step, grad_norms)
            if g_stats is None:
                return None
            stats.update(g_stats)
        fakes = None
        for i, (real, labels) in enumerate(d_batches):
            d_stats, fakes = self.d_update(real, labels, step * len(d_batches) + i, grad_norms)
            if d_stats is None:
                return None
            stats.update(d_stats)
        if self.order == "d_first":
            g_stats = self.g_update(g_batch, step, grad_norms, reused=fakes if self.g_step == "reuse" else None)
            if g_stats is None:
                return None
            stats.update(g_stats)
        n = d_batches[-1][0].shape[0]
        if self.ema is not None:
            self.ema.update(self.G, step + 1, n * self.images_per_step)
        if hasattr(self.augment, "iteration_done"):  # ADA: p moves after the iteration, from every rank's signs
            self.augment.iteration_done(self.images(batches) * self.images_per_step, self.across_ranks)
        if self.augment is not None and hasattr(self.augment, "p"):
            stats["aug_p"] = torch.tensor(float(self.augment.p))
        return stats

    # ----------------------------------------------------------------------------------------------- D's update

    def d_update(self, real: Tensor, real_labels: Tensor | None, d_update: int, grad_norms: bool):
        """Dmain (and Dreg when a lazy penalty is due); returns (stats or None if skipped, the rounds' fakes:
        ``[(fake, fake_labels, real, real_labels)]``, each fake with its graph when G reuses it)."""
        ############################
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        ############################
        n = real.shape[0]
        z = self.latents.z("Dmain", n)
        fake_labels = real_labels if self.pairs and self.classes is not None else self.latents.labels("Dmain", n)
        self.opt_d.zero_grad(set_to_none=True)
        rounds, kept, mean = self._rounds(n), [], _Mean()
        total_loss = None
        shared = [r for r in self.d_regs if r.due(d_update) and self.share_penalties and hasattr(r, "from_logits")]
        own = [r for r in self.d_regs if r.due(d_update) and r not in shared]
        with self._frozen("generator", self.g_step == "fresh"):
            for k, (sl, weight) in enumerate(rounds):
                fl = None if fake_labels is None else fake_labels[sl]
                rl = None if real_labels is None else real_labels[sl]
                with self.autocast(), (torch.no_grad() if self.g_step == "fresh" else contextlib.nullcontext()):
                    fake = self._generate(z[sl], fl)
                kept.append((fake, fl, real[sl], rl))
                # The penalties' inputs require grad: their gradient is taken from the loss's own pass.
                real_in = real[sl].detach().requires_grad_(any(r.judges == "real" for r in shared))
                fake_in = fake.detach().requires_grad_(any(r.judges == "fake" for r in shared))
                labels = self._labels(real_labels=rl, fake_labels=fl)
                tape = Tape(self.seen_by_d, (real_in, fake_in))
                with _no_sync(self.D, k < len(rounds) - 1):
                    # D sees the real batch and the fake batch separately (BatchNorm statistics per batch);
                    # fake.detach(): this update must not reach G.
                    with self.autocast():
                        loss_d, stats = self.loss.d_loss(tape, real_in, fake_in, **labels)
                    stats = {"loss_d": loss_d.detach(), **(stats or {})}  # a plugin loss may report nothing
                    total = loss_d
                    for reg in shared + own:
                        x, i = (real_in, 0) if reg.judges == "real" else (fake_in, 1)
                        if reg in shared and i in tape.logits:
                            penalty, reg_stats = reg.from_logits(x, tape.logits[i].float())
                        else:  # its own pass, in fp32 (a gradient of a gradient underflows fp16 unless scaled)
                            penalty, reg_stats = reg.penalty(self.seen_by_d, real_in.detach().float(),
                                                             fake_in.detach().float(), d_update, **labels)
                        if penalty is not None:
                            total = total + penalty
                            stats.update(reg_stats)
                    self._backward("discriminator", total * weight)
                total_loss = total.detach() * weight if total_loss is None else total_loss + total.detach() * weight
                mean.add(stats, sl.stop - sl.start)
                if hasattr(self.augment, "observe"):  # ADA reads D's view of every real batch
                    self.augment.observe({k: v for k, v in stats.items() if k == "real_sign"}, sl.stop - sl.start)
            stats = mean.value()
            if not self._apply("discriminator", total_loss, stats, grad_norms):
                return None, kept
            due = [r for r in self.d_lazy if r.due(d_update)]
            if due:  # StyleGAN2's "Dreg": a lazy penalty is its own update, on the steps it is due
                reg_stats = self._lazy_d_update(due, kept, d_update)
                if reg_stats is None:
                    return None, kept
                stats.update(reg_stats)
        return stats, kept

    def _lazy_d_update(self, due: list, kept: list, d_update: int) -> dict[str, Tensor] | None:
        """The lazy penalties' own update over the D update's rounds (None if skipped)."""
        self.opt_d.zero_grad(set_to_none=True)
        mean, total_penalty = _Mean(), None
        rounds = self._rounds(sum(real.shape[0] for _, _, real, _ in kept))
        for k, ((sl, weight), (fake, fl, real, rl)) in enumerate(zip(rounds, kept)):
            labels = self._labels(real_labels=rl, fake_labels=fl)
            stats, total = {}, None
            with _no_sync(self.D, k < len(rounds) - 1):
                for reg in due:
                    if hasattr(reg, "from_logits"):
                        # D's own pass on the images the penalty judges (with its own augmentation draw)
                        x = (real if reg.judges == "real" else fake).detach().float().requires_grad_(True)
                        which = labels.get("real_labels" if reg.judges == "real" else "fake_labels")
                        logits = discriminate(self.seen_by_d, x, which)
                        penalty, reg_stats = reg.from_logits(x, logits)
                        # logits · 0, as the official loop's: every weight of the pass gets a gradient (0 for
                        # those the penalty does not reach, D's output bias), so Adam steps each (and DDP
                        # sees a gradient for each).
                        penalty = penalty + logits.float().mean() * 0
                        if reg.judges == "real" and hasattr(self.augment, "observe"):  # the official loop counts them
                            self.augment.observe({"real_sign": logits.detach().sign().mean()}, x.shape[0])
                    else:
                        penalty, reg_stats = reg.penalty(self.seen_by_d, real.detach().float(),
                                                         fake.detach().float(), d_update, **labels)
                    if penalty is not None:
                        total = penalty if total is None else total + penalty
                        stats.update(reg_stats)
                if total is None:
                    return {}
                self._backward("discriminator", total * weight)
            total_penalty = total.detach() * weight if total_penalty is None else total_penalty + total.detach() * weight
            mean.add(stats, sl.stop - sl.start)
        stats = mean.value()
        return stats if self._apply("discriminator", total_penalty, dict(stats), False) else None

    # ----------------------------------------------------------------------------------------------- G's update

    def g_update(self, batch: tuple[Tensor, Tensor | None], step: int, grad_norms: bool, reused: list | None = None):
        """Gmain (and Greg when due): on ``reused`` fakes (the D update's rounds, the tutorial's) or on a
        fresh z; returns stats or None if skipped."""
        ############################
        # (2) Update G network: maximize log(D(G(z)))
        ############################
        real, real_labels = batch
        n = real.shape[0]
        if reused is None:
            z = self.latents.z("Gmain", n)
            fake_labels = real_labels if self.pairs and self.classes is not None else self.latents.labels("Gmain", n)
        self.opt_g.zero_grad(set_to_none=True)
        rounds, mean, total_loss = self._rounds(n), _Mean(), None
        with self._frozen("discriminator"):
            for k, (sl, weight) in enumerate(rounds):
                with _no_sync(self.G, k < len(rounds) - 1):
                    if reused is not None:  # the same fakes, now through the freshly updated D
                        fake, fl, r, rl = reused[k]
                    else:
                        fl, r = None if fake_labels is None else fake_labels[sl], real[sl]
                        rl = None if real_labels is None else real_labels[sl]
                        with self.autocast():
                            fake = self._generate(z[sl], fl)
                    extra = {}
                    if self.g_scores_reals:  # RpGAN pairs each fake with a real image
                        extra = {"real": r, **({"real_labels": rl} if self.labelled_d else {})}
                    # D is frozen and its pass never synchronised: only G's gradients are wanted.
                    with self.autocast(), _no_sync(self.D):
                        loss_g, stats = self.loss.g_loss(self.seen_by_d, fake, **self._labels(fake_labels=fl),
                                                         **extra)
                    self._backward("generator", loss_g * weight)
                total_loss = loss_g.detach() * weight if total_loss is None else total_loss + loss_g.detach() * weight
                mean.add({"loss_g": loss_g.detach(), **(stats or {})}, sl.stop - sl.start)
            stats = mean.value()
            if not self._apply("generator", total_loss, stats, grad_norms):
                return None
            due = [r for r in self.g_regs if getattr(r, "due", lambda s: True)(step)]
            if due:  # StyleGAN2's "Greg": path-length regularisation, its own update when due
                reg_stats = self._lazy_g_update(due, n, step)
                if reg_stats is None:
                    return None
                stats.update(reg_stats)
        return stats

    def _lazy_g_update(self, due: list, n: int, step: int) -> dict[str, Tensor] | None:
        """Generator regularisers' own update (None if skipped), on the Greg phase's latents."""
        z = self.latents.z("Greg", n)
        labels = self.latents.labels("Greg", n)
        probe = lambda images: self.latents.probe("Greg", images)  # noqa: E731
        self.opt_g.zero_grad(set_to_none=True)
        rounds, mean, total_penalty = self._rounds(n), _Mean(), None
        for k, (sl, weight) in enumerate(rounds):
            stats, total = {}, None
            with _no_sync(self.G, k < len(rounds) - 1):
                for reg in due:
                    penalty, reg_stats = reg.penalty(self.G, z[sl], None if labels is None else labels[sl], step,
                                                     probe=probe)
                    if penalty is not None:
                        total = penalty if total is None else total + penalty
                        stats.update(reg_stats)
                if total is None:
                    return {}
                self._backward("generator", total * weight)
            total_penalty = total.detach() * weight if total_penalty is None else total_penalty + total.detach() * weight
            mean.add(stats, sl.stop - sl.start)
        stats = mean.value()
        return stats if self._apply("generator", total_penalty, dict(stats), False) else None

    # ------------------------------------------------------------------------------------------------ the parts

    def _rounds(self, n: int) -> list[tuple[slice, float]]:
        """The accumulation rounds of a batch of ``n``: consecutive slices, each with its loss weight."""
        size = math.ceil(n / min(self.accumulate, n))
        slices = [slice(i, min(i + size, n)) for i in range(0, n, size)]
        if self.accumulate_mode == "sum":  # each round's mean adds its gradient (StyleGAN2-ADA's gain)
            return [(sl, 1.0) for sl in slices]
        return [(sl, (sl.stop - sl.start) / n) for sl in slices]  # the batch mean's gradient

    def _generate(self, z: Tensor, labels: Tensor | None) -> Tensor:
        return self.G(z) if self.classes is None else self.G(z, labels)

    def _labels(self, **labels: Tensor | None) -> dict:
        # Only a class-conditional D is given labels, so losses written without them keep working.
        return labels if self.labelled_d else {}

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


def gan_step(G, D, loss, opt_g, opt_d, real: Tensor, grad_norms: bool = False, guard: Guard | None = None):
    """The tutorial's step on one real batch (see :class:`GANStep`); returns detached stats or None."""
    return GANStep(G, D, loss, opt_g, opt_d, guard=guard)([(real, None)], 0, grad_norms)
