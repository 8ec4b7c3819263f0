"""The two players and what trains them: G, D, their optimizers, loss scalers, G's EMA and the schedules.

    players = Players.build(recipe, device, regularizers)   # after seeding: initialisation draws from it
    scheduled = Scheduled(recipe, players, gan_step, registry)
    values = scheduled.apply(images_seen)                    # before each step

Building order matters for exact reproduction: G, then D, then the
optimizers, each drawing from the seeded global stream as they always have.
The schedules live here because every value they set belongs to what trains
the players: a learning rate, an Adam beta, the EMA's half-life, a
regulariser's or the augmentation's argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from gankit.contracts import HasProbability
from gankit.core.errors import GankitError
from gankit.nn.conditional import check_pair
from gankit.recipe.build import build_discriminator, build_generator
from gankit.recipe.optimizers import build_optimizer
from gankit.training import speed
from gankit.training.ema import EMA


def checked_optimizer(spec, module: torch.nn.Module, where: str) -> torch.optim.Optimizer:
    """The recipe's optimizer for ``module``; torch's own argument checks become recipe errors."""
    try:
        return build_optimizer(spec, module.parameters())
    except (ValueError, TypeError) as exc:  # betas in [0, 1), eps >= 0, ...
        raise GankitError(f"{where}: optimizer '{spec.name}' rejected its arguments: {exc}") from None


def lazy_ratio(regularizers, player: str) -> float:
    """StyleGAN2's ``mb_ratio`` for a player with a lazy regulariser: every / (every + 1), else 1.

    A lazy penalty is its own optimizer step every ``every`` updates, so the
    player's optimizer steps every + 1 times per ``every`` updates; the ratio
    keeps Adam's step size and moment horizons per image what they would be
    without it (Karras et al. 2020, appendix B).
    """
    lazy = [r for r in regularizers if r.player == player and r.every > 1 and r.adjust_optimizer]
    intervals = {r.every for r in lazy}
    if len(intervals) > 1:
        raise GankitError(f"the {player}'s lazy regularisers run every {sorted(intervals)} updates; give them one "
                          "interval (every), as StyleGAN2 does")
    if not intervals:
        return 1.0
    every = intervals.pop()
    return every / (every + 1)


def adjust_for_lazy(opt: torch.optim.Optimizer, ratio: float) -> None:
    """lr × ratio and every beta to the power ratio (Adam's, RMSprop's alpha untouched)."""
    if ratio == 1.0:
        return
    for group in opt.param_groups:
        group["lr"] = group["lr"] * ratio
        if "betas" in group:
            group["betas"] = tuple(b**ratio for b in group["betas"])


@dataclass
class Players:
    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    ema: EMA | None = None
    scaler_g: torch.amp.GradScaler | None = None  # train.precision: fp16 only
    scaler_d: torch.amp.GradScaler | None = None
    lazy_ratios: dict[str, float] | None = None  # player -> StyleGAN2's mb_ratio (1: no lazy regulariser)

    @classmethod
    def build(cls, recipe, device: torch.device, regularizers: list = ()) -> Players:
        t = recipe.train
        G = build_generator(recipe).to(device)
        D = build_discriminator(recipe).to(device)
        check_pair(G, D)
        opt_g = checked_optimizer(recipe.optim.g, G, "optim.g")
        opt_d = checked_optimizer(recipe.optim.d, D, "optim.d")
        ratios = {player: lazy_ratio(regularizers, player) for player in ("generator", "discriminator")}
        adjust_for_lazy(opt_g, ratios["generator"])
        adjust_for_lazy(opt_d, ratios["discriminator"])
        ema = EMA(G, t.ema.decay, t.ema.rampup, t.ema.half_life_kimg) if t.ema is not None else None
        # After the EMA's copy, which samples and evaluates uncompiled; in place: the optimizers stay valid.
        speed.prepare_models(G, D, t.channels_last, t.compile)
        return cls(G, D, opt_g, opt_d, ema, speed.make_scaler(t.precision, device), speed.make_scaler(t.precision, device),
                   ratios)

    @property
    def sampler(self) -> nn.Module:
        """The generator that samples and evaluation use: the EMA when on."""
        return self.ema.module if self.ema is not None else self.G


class Scheduled:
    """The recipe's schedules, each bound to the object it sets."""

    def __init__(self, recipe, players, gan_step, registry: Callable):
        self.items = []
        reg = registry("schedules")
        for spec in recipe.schedules:
            schedule = reg.build_from_recipe(spec.name, None, **{k: v for k, v in spec.args.items() if k != "target"})
            for target in spec.targets:
                self.items.append((target, schedule, self._setter(target, players, gan_step)))

    @staticmethod
    def _setter(target: str, players, gan_step) -> Callable[[float], None]:
        parts = target.split(".")
        if parts[0] == "optim":
            player = "generator" if parts[1] == "g" else "discriminator"
            opt = players.opt_g if player == "generator" else players.opt_d
            ratio = (players.lazy_ratios or {}).get(player, 1.0)
            if parts[2] == "lr":
                def set_lr(v):
                    for group in opt.param_groups:
                        group["lr"] = v * ratio
                return set_lr
            k = int(parts[3])

            def set_beta(v):
                for group in opt.param_groups:
                    betas = list(group["betas"])
                    betas[k] = v**ratio
                    group["betas"] = tuple(betas)
            return set_beta
        if parts[0] == "regularizers":
            reg, attr = gan_step.regularizers[int(parts[1])], parts[2]
            if not hasattr(reg, attr):
                raise GankitError(f"schedules: regularizer {parts[1]} ({type(reg).__name__}) has no '{attr}' to schedule")
            return lambda v: setattr(reg, attr, v)
        if parts[0] == "train":
            return lambda v: setattr(players.ema, "half_life_images", v * 1000)
        augment = gan_step.augment
        if not isinstance(augment, HasProbability):
            raise GankitError(f"schedules: augment '{type(augment).__name__}' has no probability p to schedule")
        return lambda v: setattr(augment, "p", v)

    def apply(self, images_seen: int) -> dict[str, float]:
        """Set every scheduled value for ``images_seen``; returns them (logged as ``schedule/<target>``)."""
        values = {}
        for target, schedule, setter in self.items:
            value = float(schedule(images_seen))
            setter(value)
            values[f"schedule/{target}"] = value
        return values
