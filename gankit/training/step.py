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
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from gankit.contracts import Adaptive, HasProbability, SharesPass
from gankit.losses.base import discriminate
from gankit.nn.conditional import is_conditional, num_classes
from gankit.recipe.checked import call_loss, call_penalty
from gankit.training.distributed import World, unwrap, wrap
from gankit.training.feeding import Latents
from gankit.training.updates import Guard, Tape, Updates, grad_norm, no_sync  # noqa: F401 (grad_norm: re-exported)


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


@dataclass
class GANStep(Updates):
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
    # What the loss and the regularisers return is checked on every call (gankit.recipe.checked); the trial
    # step before a run (gankit.training.assemble.trial_step) also asks for finite values.
    trial: bool = False

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
            regs[reg.player].append(reg)  # declared by every regulariser (gankit.contracts.Regularizer)
        lazy = lambda r: r.every > 1  # noqa: E731
        self.d_regs = [r for r in regs["discriminator"] if not lazy(r)]
        self.d_lazy = [r for r in regs["discriminator"] if lazy(r)]
        self.g_regs = regs["generator"]  # generator regularisers run as their own update (path length)
        self.pairs = bool(self.loss.pairs)  # declared by every loss (gankit.contracts.Loss)
        self.g_scores_reals = bool(self.loss.needs_real_for_g)
        # The weights each player trains (Freeze-D's frozen layers stay frozen when the player is thawed).
        self._trainable = {"generator": [p for p in self.G.parameters() if p.requires_grad],
                           "discriminator": [p for p in self.D.parameters() if p.requires_grad]}
        self.trains_g = bool(self._trainable["generator"])  # a frozen G's loss has no gradient: not a broken loss

    @classmethod
    def from_recipe(cls, recipe, players, regularizers: list, device: torch.device, world=None,
                    latents: object | None = None, aug_generator: object | None = None) -> GANStep:
        """The step a recipe trains with: its loss and augmentation built from the registries, ``players``
        (their models, optimizers, scalers and EMA), the recipe's ``train`` settings; under torchrun
        (``world``) G and D train through DDP wrappers. ``latents`` and ``aug_generator`` are the step's
        random sources (default: the global stream)."""
        from gankit.training import speed
        from gankit.recipe.build import build_augment, build_loss

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

    def drop_ddp(self) -> None:
        """Step G and D themselves from now on, not their DDP wrappers (which hold torchrun's process group)."""
        self.G, self.D = unwrap(self.G), unwrap(self.D)
        self.seen_by_d = AugmentedD(self.D, self.augment, self.seen_by_d.source) \
            if isinstance(self.seen_by_d, AugmentedD) else self.D

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
        if isinstance(self.augment, Adaptive):  # ADA: p moves after the iteration, from every rank's signs
            self.augment.iteration_done(self.images(batches) * self.images_per_step, self.across_ranks)
        if isinstance(self.augment, HasProbability):
            stats["aug_p"] = torch.tensor(float(self.augment.p))
        return stats

    # ------------------------------------------------------------------------------------------------- updates

    def d_update(self, real: Tensor, real_labels: Tensor | None, d_update: int, grad_norms: bool):
        """Dmain (and Dreg when a lazy penalty is due); returns (stats or None if skipped, the rounds' fakes:
        ``[(fake, fake_labels, real, real_labels)]``, each fake with its graph when G reuses it)."""
        ############################
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        ############################
        n = real.shape[0]
        z = self.latents.z("Dmain", n)
        fake_labels = real_labels if self.pairs and self.classes is not None else self.latents.labels("Dmain", n)
        due = [r for r in self.d_regs if _due(r, d_update)]
        shared = [r for r in due if self.share_penalties and isinstance(r, SharesPass)]
        kept = []

        def dmain(k: int, sl: slice):
            fl, rl = _part(fake_labels, sl), _part(real_labels, sl)
            with self.autocast(), (torch.no_grad() if self.g_step == "fresh" else contextlib.nullcontext()):
                fake = self._generate(z[sl], fl)
            kept.append((fake, fl, real[sl], rl))
            # The shared penalties' inputs require grad: their gradient comes from the loss's own pass.
            real_in = real[sl].detach().requires_grad_(any(r.judges == "real" for r in shared))
            fake_in = fake.detach().requires_grad_(any(r.judges == "fake" for r in shared))
            labels = self._labels(real_labels=rl, fake_labels=fl)
            tape = Tape(self.seen_by_d, (real_in, fake_in))
            # D sees the real batch and the fake batch separately (BatchNorm statistics per batch);
            # fake.detach(): this update must not reach G.
            with self.autocast():
                loss_d, stats = call_loss(self.loss.d_loss, tape, real_in, fake_in, trial=self.trial, **labels)
            stats = {"loss_d": loss_d.detach(), **(stats or {})}  # a plugin loss may report nothing
            if isinstance(self.augment, Adaptive):  # ADA reads D's view of every real batch
                self.augment.observe({k: v for k, v in stats.items() if k == "real_sign"}, sl.stop - sl.start)
            total = loss_d
            for reg in due:
                x, i = (real_in, 0) if reg.judges == "real" else (fake_in, 1)
                if reg in shared and i in tape.logits:
                    penalty, reg_stats = call_penalty(reg.from_logits, x, tape.logits[i].float(), trial=self.trial)
                else:  # its own pass, in fp32 (a gradient of a gradient underflows fp16 unless scaled)
                    penalty, reg_stats = call_penalty(reg.penalty, self.seen_by_d, real_in.detach().float(),
                                                      fake_in.detach().float(), d_update, trial=self.trial, **labels)
                if penalty is not None:
                    total = total + penalty
                    stats.update(reg_stats)
            return total, stats

        with self._frozen("generator", self.g_step == "fresh"):
            stats = self._update("discriminator", n, dmain, grad_norms)
            lazy = [r for r in self.d_lazy if _due(r, d_update)]
            if stats is not None and lazy:  # StyleGAN2's "Dreg": a lazy penalty is its own update when due
                reg_stats = self._update("discriminator", n, lambda k, sl: self._dreg(lazy, kept[k], d_update))
                stats = None if reg_stats is None else {**stats, **reg_stats}
        return stats, kept

    def _dreg(self, lazy: list, kept_round: tuple, d_update: int):
        """One round of the lazy penalties: D's own pass on the images each judges (its own augmentation draw)."""
        fake, fl, real, rl = kept_round
        labels = self._labels(real_labels=rl, fake_labels=fl)
        total, stats = None, {}
        for reg in lazy:
            if isinstance(reg, SharesPass):
                x = (real if reg.judges == "real" else fake).detach().float().requires_grad_(True)
                logits = discriminate(self.seen_by_d, x, labels.get(f"{reg.judges}_labels"))
                penalty, reg_stats = call_penalty(reg.from_logits, x, logits, trial=self.trial)
                # logits · 0, as the official loop's: every weight of the pass gets a gradient (0 where the
                # penalty does not reach: D's output bias), so Adam steps each, and DDP sees one for each.
                penalty = penalty + logits.float().mean() * 0
                if reg.judges == "real" and isinstance(self.augment, Adaptive):  # the official loop counts them
                    self.augment.observe({"real_sign": logits.detach().sign().mean()}, x.shape[0])
            else:
                penalty, reg_stats = call_penalty(reg.penalty, self.seen_by_d, real.detach().float(),
                                                  fake.detach().float(), d_update, trial=self.trial, **labels)
            if penalty is not None:
                total = penalty if total is None else total + penalty
                stats.update(reg_stats)
        return total, stats

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

        def gmain(k: int, sl: slice):
            if reused is not None:  # the same fakes, now through the freshly updated D
                fake, fl, r, rl = reused[k]
            else:
                fl, r, rl = _part(fake_labels, sl), real[sl], _part(real_labels, sl)
                with self.autocast():
                    fake = self._generate(z[sl], fl)
            extra = {}
            if self.g_scores_reals:  # RpGAN pairs each fake with a real image
                extra = {"real": r, **({"real_labels": rl} if self.labelled_d else {})}
            # D is frozen and its pass never synchronised: only G's gradients are wanted.
            with self.autocast(), no_sync(self.D):
                loss_g, stats = call_loss(self.loss.g_loss, self.seen_by_d, fake, trial=self.trial,
                                          needs_grad=self.trains_g, **self._labels(fake_labels=fl), **extra)
            return loss_g, {"loss_g": loss_g.detach(), **(stats or {})}

        with self._frozen("discriminator"):
            stats = self._update("generator", n, gmain, grad_norms)
            lazy = [r for r in self.g_regs if _due(r, step)]
            if stats is not None and lazy:  # StyleGAN2's "Greg": path length, its own update when due
                z_reg, labels = self.latents.z("Greg", n), self.latents.labels("Greg", n)
                probe = lambda images: self.latents.probe("Greg", images)  # noqa: E731

                def greg(k: int, sl: slice):
                    total, reg_stats = None, {}
                    for reg in lazy:
                        penalty, s = call_penalty(reg.penalty, self.G, z_reg[sl], _part(labels, sl), step, probe=probe,
                                                   trial=self.trial, needs_grad=self.trains_g)
                        if penalty is not None:
                            total = penalty if total is None else total + penalty
                            reg_stats.update(s)
                    return total, reg_stats

                reg_stats = self._update("generator", n, greg)
                stats = None if reg_stats is None else {**stats, **reg_stats}
        return stats

    def _generate(self, z: Tensor, labels: Tensor | None) -> Tensor:
        return self.G(z) if self.classes is None else self.G(z, labels)

    def _labels(self, **labels: Tensor | None) -> dict:
        # Only a class-conditional D is given labels, so losses written without them keep working.
        return labels if self.labelled_d else {}


def _due(reg, step: int) -> bool:
    """Whether ``reg`` runs at update ``step`` (0-based; D updates for D's, G updates for G's): every ``every``-th."""
    return step % reg.every == 0


def _part(labels: Tensor | None, sl: slice) -> Tensor | None:
    return None if labels is None else labels[sl]


def gan_step(G, D, loss, opt_g, opt_d, real: Tensor, grad_norms: bool = False, guard: Guard | None = None):
    """The tutorial's step on one real batch (see :class:`GANStep`); returns detached stats or None."""
    return GANStep(G, D, loss, opt_g, opt_d, guard=guard)([(real, None)], 0, grad_norms)
