"""The two players and what trains them: G, D, their optimizers, loss scalers and G's EMA.

    players = Players.build(recipe, device)   # after seeding: the models' initialisation draws from it

Building order matters for exact reproduction: G, then D, then the
optimizers, each drawing from the seeded global stream as they always have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gankit.nn.conditional import check_pair
from gankit.training import speed
from gankit.core.errors import GankitError
from gankit.training.checkpoint import CheckpointError, load_optimizer, load_state
from gankit.training.ema import EMA
from gankit.training.failures import checked_optimizer
from gankit.training.parts import build_discriminator, build_generator


def lazy_ratio(regularizers, player: str) -> float:
    """StyleGAN2's ``mb_ratio`` for a player with a lazy regulariser: every / (every + 1), else 1.

    A lazy penalty is its own optimizer step every ``every`` updates, so the
    player's optimizer steps every + 1 times per ``every`` updates; the ratio
    keeps Adam's step size and moment horizons per image what they would be
    without it (Karras et al. 2020, appendix B).
    """
    lazy = [r for r in regularizers if getattr(r, "player", "discriminator") == player
            and getattr(r, "every", 1) > 1 and getattr(r, "adjust_optimizer", True)]
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

    def state(self) -> dict[str, Any]:
        """The players' part of a checkpoint."""
        return {
            "generator": self.G.state_dict(),
            "discriminator": self.D.state_dict(),
            "optim_g": self.opt_g.state_dict(),
            "optim_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict() if self.scaler_g is not None else None,
            "scaler_d": self.scaler_d.state_dict() if self.scaler_d is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
        }

    def restore(self, ck: dict[str, Any], where: str) -> None:
        load_state(self.G, ck["generator"], "generator", where)
        load_state(self.D, ck["discriminator"], "discriminator", where)
        load_optimizer(self.opt_g, ck["optim_g"], "generator optimizer", where)
        load_optimizer(self.opt_d, ck["optim_d"], "discriminator optimizer", where)
        for key, scaler in (("scaler_g", self.scaler_g), ("scaler_d", self.scaler_d)):
            if scaler is not None and ck.get(key):  # none in fp32/bf16 or older checkpoints: a fresh fp16 scale
                try:
                    scaler.load_state_dict(ck[key])
                except (KeyError, TypeError, RuntimeError) as exc:
                    raise CheckpointError(f"checkpoint '{where}' has a malformed {key}: {exc}") from None
        if self.ema is not None:
            self.ema.load_state_dict(ck["ema"])
