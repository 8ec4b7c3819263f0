"""StyleGAN2's path-length regularisation (Karras et al. 2020, section 3.2): a generator regulariser.

For w ~ mapping(z) and y ~ N(0, I) / √(H·W), the Jacobian-vector length
‖J_wᵀ y‖ = ‖∇_w (g(w) · y)‖ should be the same everywhere; the penalty is

    weight · E[(‖J_wᵀ y‖ − a)²],    a ← lerp(a, E‖J_wᵀ y‖, decay)

with ``a`` a running mean of the lengths (kept in checkpoints), computed on
the first batch_size / ``batch_shrink`` latents of its own phase every
``every`` G updates as its own update, multiplied by ``every`` (lazy, as the
official "Greg" phase; the generator's Adam settings are adjusted for it).
The GAN step hands it the phase's latents and labels and the source of the
probes y (:class:`gankit.training.feeding.Latents`), so its draws can be
replayed like every other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch

from gankit.core.errors import CheckpointError, GankitError


class PathLengthPenalty:
    """StyleGAN2's path-length regulariser of G: weight · E[(‖J_wᵀ y‖ − a)²], lazy every 4 G updates.

    ``{name: path_length, weight: 2, decay: 0.01, batch_shrink: 2, every: 4}`` are the paper's settings.
    """

    player: ClassVar[str] = "generator"

    def __init__(self, weight: float = 2.0, decay: float = 0.01, batch_shrink: int = 2, every: int = 4,
                 adjust_optimizer: bool = True):
        if weight < 0 or not 0 <= decay <= 1 or batch_shrink < 1 or every < 1:
            raise GankitError(f"path_length: weight >= 0, decay in [0, 1], batch_shrink >= 1 and every >= 1, got "
                              f"{weight}, {decay}, {batch_shrink}, {every}")
        self.weight, self.decay, self.batch_shrink, self.every = float(weight), float(decay), batch_shrink, every
        self.adjust_optimizer = adjust_optimizer
        self.mean = torch.zeros([])  # a: the running mean of the path lengths

    def penalty(self, G, z: torch.Tensor, labels: torch.Tensor | None, step: int,
                probe: Callable[[torch.Tensor], torch.Tensor] = torch.randn_like):
        """The penalty on the first len(z) // batch_shrink of ``z`` (and ``labels``) at G update ``step``
        (None when not due); ``probe(images)`` draws y ~ N(0, I) of the images' shape."""
        if step % self.every or self.weight == 0:
            return None, {}
        n = max(1, z.shape[0] // self.batch_shrink)
        images, ws = G(z[:n], None if labels is None else labels[:n], return_ws=True)  # moves w_avg, as run_G
        noise = probe(images) / math.sqrt(images.shape[2] * images.shape[3])  # y / √(H·W), drawn after G
        (grads,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)  # J_wᵀ y, per w
        lengths = grads.square().sum(2).mean(1).sqrt()  # ‖J_wᵀ y‖ per image (mean over the ws)
        # a ← lerp(a, E‖·‖, decay); the penalty keeps the gradient through E‖·‖, as the official loss
        mean = self.mean.to(lengths.device).lerp(lengths.mean(), self.decay)
        self.mean = mean.detach().cpu()
        # images · 0: the penalty reaches every parameter of the pass (DDP expects a gradient for each)
        penalty = ((lengths - mean).square().mean() + images[:, 0, 0, 0].mean() * 0) * self.weight * self.every
        return penalty, {"path_length": lengths.detach().mean(), "path_length_mean": mean.detach(),
                         "path_length_penalty": penalty.detach()}

    def state_dict(self) -> dict:
        return {"mean": float(self.mean)}

    def load_state_dict(self, state: dict) -> None:
        try:
            self.mean = torch.tensor(float(state["mean"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"the checkpoint's path-length state is malformed: {exc}") from None
