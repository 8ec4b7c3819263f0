"""An exponential moving average of the generator's weights (``train.ema``).

    ema = EMA(G, decay=0.999, rampup=0.05)     # after G is on its device
    ...after each G update:  ema.update(G, step, batch_size)
    samples / evaluation:    ema.module(z)
    checkpoint:              state["ema"] = ema.state_dict(); later ema.load_state_dict(state["ema"])

Each update moves the copy towards G: ``ema ← β·ema + (1 - β)·G``. Without a
ramp-up β is ``decay`` at every step. With ``rampup`` (StyleGAN2-ADA's
``ema_rampup``) the average's half-life, counted in images, is at most
``rampup`` × the images seen so far, so early in training the average follows
G closely instead of dragging its random initialisation along::

    half_life = batch_size · ln ½ / ln decay         # images; β = decay at this half-life
    half_life = min(half_life, rampup · images_seen)  # with ramp-up
    β = ½ ** (batch_size / half_life)

With ``half_life_kimg`` (StyleGAN2-ADA's ``ema_kimg``; R3GAN schedules it)
the half-life is given in images directly and ``decay`` is not used; a
half-life of 0 copies G.

``images_seen`` counts the images of the updates before this one (so the very
first update with a ramp-up copies G). Buffers (BatchNorm running
statistics) are copied, not averaged, as in StyleGAN2-ADA. The copy keeps G's
training/eval mode (gankit samples in training mode, as the tutorial does)
and never needs gradients.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from gankit.core.errors import CheckpointError, GankitError
from gankit.training.distributed import unwrap


class EMA:
    """A moving-average copy of ``G``: :attr:`module` is the generator to sample from."""

    def __init__(self, G: nn.Module, decay: float = 0.999, rampup: float | None = None,
                 half_life_kimg: float | None = None):
        if not 0 <= decay < 1:
            raise GankitError(f"train.ema.decay must be in [0, 1), got {decay} (turn EMA off with train.ema: null)")
        if rampup is not None and rampup <= 0:
            raise GankitError(f"train.ema.rampup must be > 0 or null (no ramp-up), got {rampup}")
        self.decay = float(decay)
        # The half-life in images when given directly (a schedule may change it between updates).
        self.half_life_images = None if half_life_kimg is None else float(half_life_kimg) * 1000
        self.rampup = None if rampup is None else float(rampup)
        self.module = copy.deepcopy(G).requires_grad_(False)
        self.images_seen = 0  # images of all updates so far (the ramp-up's clock)
        self.step = 0  # the training step of the latest update (for checks on resume)

    def beta(self, batch_size: int) -> float:
        """The weight of the old average in the next update."""
        if self.half_life_images is not None:
            half_life = self.half_life_images
        elif self.decay == 0:
            return 0.0
        else:
            half_life = batch_size * math.log(0.5) / math.log(self.decay)  # images
        if self.rampup is not None:
            half_life = min(half_life, self.rampup * self.images_seen)
        return 0.5 ** (batch_size / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, G: nn.Module, step: int, batch_size: int) -> None:
        """Fold G's current weights into the average after training step ``step`` of ``batch_size`` images."""
        beta = self.beta(batch_size)
        G = unwrap(G)  # under DDP, the generator itself (its parameter names unprefixed)
        ema_params = dict(self.module.named_parameters())
        for name, p in G.named_parameters():
            avg = ema_params[name]
            avg.copy_(p.detach().lerp(avg, beta))  # β·avg + (1 - β)·p
        ema_buffers = dict(self.module.named_buffers())
        for name, b in G.named_buffers():
            ema_buffers[name].copy_(b)
        self.images_seen += int(batch_size)
        self.step = int(step)

    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs; plain tensors and numbers (``torch.load(weights_only=True)`` reads it)."""
        return {"generator": self.module.state_dict(), "images_seen": self.images_seen, "step": self.step,
                "decay": self.decay, "rampup": self.rampup}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self.module.load_state_dict(state["generator"])
            self.images_seen = int(state["images_seen"])
            self.step = int(state["step"])
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(f"the checkpoint's EMA generator does not fit this generator: {exc}") from None
