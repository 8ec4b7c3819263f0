"""ADA's controller: adjust the augmentation probability p from how D overfits (Karras et al. 2020).

    ada = AdaptiveP(target=0.6, interval=4, kimg=500)
    aug = ADAugment("bgc", p=ada.p)
    for each training iteration:
        ...                                               # D's passes on aug(real), aug(fake)
        ada.observe(real_logits.sign().mean(), len(real)) # every pass of D over real images
        aug.p = ada.step(images=batch_size)               # at the end: moves p every `interval` iterations

The overfitting heuristic is r_t = E[sign(D(x_real))] over every real image
D scored in the last ``interval`` iterations (its main passes and, as in the
official loop, the passes of a lazy R1): near 0 when D cannot tell real from
fake, towards 1 as it memorises the training set. Every ``interval``
iterations

    p <- max(0, p + sign(r_t - target) · n / (kimg · 1000))

with n the iterations' batch images (batch_size · interval at a fixed batch
size): p can move from 0 to 1 in ``kimg`` thousand images. As in the
official code (NVlabs/stylegan2-ada-pytorch, ``training/training_loop.py``)
p moves after the iteration's last update, and is clamped at 0 only; it may
pass 1, which the pipeline treats as every chance p × multiplier saturating.

Resume: :meth:`state_dict` holds p, the interval's partial sums and the
counters (plain floats and ints, loadable with ``torch.load(weights_only=True)``),
so a run stopped mid-interval continues on the same trajectory (the official
code restores none of them, NVlabs/stylegan2-ada-pytorch#81).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
from torch import Tensor

from gankit.augment.ada import ADAugment
from gankit.core.errors import CheckpointError, GankitError
from gankit.core.registry import component

STATE_KEYS = ("p", "sign_sum", "num_signs", "num_images", "num_steps", "num_updates", "rt")


class AdaptiveP:
    """The ADA heuristic: ``observe`` the real logits' signs, ``step`` once per iteration (see module doc)."""

    def __init__(self, target: float = 0.6, interval: int = 4, kimg: float = 500.0, p: float = 0.0):
        if not (isinstance(target, (int, float)) and -1 <= target <= 1):
            raise GankitError(f"ada.target must be a number in [-1, 1] (the paper uses 0.6), got {target!r}")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise GankitError(f"ada.interval must be a whole number of iterations, at least 1, got {interval!r}")
        if not (isinstance(kimg, (int, float)) and kimg > 0 and math.isfinite(kimg)):
            raise GankitError(f"ada.kimg must be a positive number of thousands of images, got {kimg!r}")
        if not (isinstance(p, (int, float)) and p >= 0 and math.isfinite(p)):
            raise GankitError(f"ada.p (the starting probability) must be at least 0, got {p!r}")
        self.target, self.interval, self.kimg = float(target), interval, float(kimg)
        self.p = float(p)
        self.sign_sum: float | Tensor = 0.0  # Σ sign(D(x_real)) over the current interval
        self.num_signs = 0  # real images scored (signs summed) in the current interval
        self.num_images = 0  # the iterations' batch images in the current interval: how far p moves
        self.num_steps = 0  # iterations (calls to step) in the current interval
        self.num_updates = 0  # adjustments made so far
        self.rt = math.nan  # the last interval's r_t (for logging); NaN before the first
        self._pending = 0  # signs observed since the last step (its default image count)

    def observe(self, real_sign_mean: float | Tensor, batch_size: int) -> None:
        """Add a pass of D over ``batch_size`` real images: the mean of their sign(D(x_real)).

        Call it for every such pass (several per iteration with gradient
        accumulation, and for a lazy R1's own pass, as the official loop
        does). A tensor is kept on its device until the interval ends, so
        observing costs no device sync.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if isinstance(real_sign_mean, Tensor):
            real_sign_mean = real_sign_mean.detach().double()
        self.sign_sum = self.sign_sum + real_sign_mean * batch_size
        self.num_signs += batch_size
        self._pending += batch_size

    def step(self, images: int | None = None, reduce: Callable[[dict], dict] | None = None) -> float:
        """End of an iteration of ``images`` batch images (default: the images observed since the last
        step); every ``interval``-th call adjusts p from the interval's r_t. Returns p.

        ``reduce`` (under torchrun: the mean over the ranks) combines the
        interval's sums of every rank before r_t is taken, so all ranks move
        p alike. An interval with no observed images leaves p alone.
        """
        self.num_images += self._pending if images is None else int(images)
        self._pending = 0
        self.num_steps += 1
        if self.num_steps < self.interval:
            return self.p
        sums = {"sign_sum": torch.as_tensor(self.sign_sum, dtype=torch.float64),
                "num_signs": torch.as_tensor(float(self.num_signs), dtype=torch.float64)}
        if reduce is not None:
            sums = reduce(sums)
        if float(sums["num_signs"]) > 0:
            self.rt = float(sums["sign_sum"]) / float(sums["num_signs"])  # r_t = E[sign(D(x_real))]
            sign = (self.rt > self.target) - (self.rt < self.target)  # sign(r_t - target): 0 when equal
            self.p = max(0.0, self.p + sign * self.num_images / (self.kimg * 1000))
            self.num_updates += 1
        self.sign_sum, self.num_signs, self.num_images, self.num_steps = 0.0, 0, 0, 0
        return self.p

    def state_dict(self) -> dict:
        """``{'p', 'sign_sum', 'num_signs', 'num_images', 'num_steps', 'num_updates', 'rt'}``: floats and ints.

        Taken between iterations (as checkpoints are): signs observed since
        the last :meth:`step` are counted as that step's images."""
        return {"p": self.p, "sign_sum": float(self.sign_sum), "num_signs": self.num_signs,
                "num_images": self.num_images + self._pending, "num_steps": self.num_steps,
                "num_updates": self.num_updates, "rt": self.rt}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s output (target, interval and kimg stay as constructed).

        A state saved before ``num_signs`` existed (every sign was a batch image) loads too."""
        if isinstance(state, dict) and "num_signs" not in state and set(state) == set(STATE_KEYS) - {"num_signs"}:
            state = {**state, "num_signs": state["num_images"]}
        if not isinstance(state, dict) or set(state) != set(STATE_KEYS):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise CheckpointError(f"the ADA controller's state must have the keys {', '.join(STATE_KEYS)}; got {got}")
        p = float(state["p"])
        if not (p >= 0 and math.isfinite(p)):
            raise CheckpointError(f"the ADA controller's saved p must be a finite number >= 0, got {state['p']!r}")
        self.p = p
        self.sign_sum = float(state["sign_sum"])
        self.num_signs, self._pending = int(state["num_signs"]), 0
        self.num_images, self.num_steps = int(state["num_images"]), int(state["num_steps"])
        self.num_updates, self.rt = int(state["num_updates"]), float(state["rt"])

    def __repr__(self) -> str:
        return f"AdaptiveP(target={self.target:g}, interval={self.interval}, kimg={self.kimg:g}, p={self.p:.4f})"


@component("augmentations", "ada")
class AdaptiveAugment(ADAugment):
    """StyleGAN2-ADA's adaptive discriminator augmentation (Karras et al. 2020): the pipeline of
    :class:`~gankit.augment.ada.ADAugment` with its probability ``p`` steered by :class:`AdaptiveP`.

    ``target`` (0.6), ``interval`` (4 iterations) and ``kimg`` (500) set the
    controller; ``target: null`` keeps ``p`` as given, or as a schedule sets
    it (R3GAN). The GAN step calls :meth:`observe` with the statistics of
    each pass of D over real images (the loss's ``real_sign`` = E[sign(D(x))],
    a lazy R1's too), and :meth:`iteration_done` after the iteration's last
    update; checkpoints keep :meth:`state_dict`, so a resumed run continues p,
    the controller's partial interval and its counters exactly.
    """

    def __init__(self, preset: str = "bgc", p: float = 0.0, *, target: float | None = 0.6, interval: int = 4,
                 kimg: float = 500.0, **pipeline):
        super().__init__(preset, p, **pipeline)
        self.controller = AdaptiveP(target, interval, kimg, p) if target is not None else None

    def observe(self, stats: dict, batch_size: int) -> None:
        """A pass of D over ``batch_size`` real images: feed its mean sign (``stats['real_sign']``) to the controller."""
        if self.controller is None:
            return
        if "real_sign" not in stats:
            raise GankitError("augment ada adapts p from E[sign(D(x))]: the loss must report 'real_sign' in its "
                              "d_loss stats (every built-in loss does); or set augment.target: null for a fixed p")
        self.controller.observe(stats["real_sign"], batch_size)

    def iteration_done(self, images: int, reduce: Callable[[dict], dict] | None = None) -> None:
        """After an iteration of ``images`` batch images (all ranks'): p moves when the interval ends."""
        if self.controller is not None:
            self.p = self.controller.step(images, reduce)

    def state_dict(self) -> dict:
        return {"p": self.p, "controller": self.controller.state_dict() if self.controller is not None else None}

    def load_state_dict(self, state: dict) -> None:
        try:
            self.p = float(state["p"])
            if self.controller is not None and state.get("controller") is not None:
                self.controller.load_state_dict(state["controller"])
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"the checkpoint's augmentation state does not fit augment ada: {exc}") from None


def _signature() -> inspect.Signature:
    """The pipeline's arguments plus the controller's: what a recipe's ``augment: {name: ada}`` may set."""
    pipeline = list(inspect.signature(ADAugment.__init__, eval_str=True).parameters.values())
    own = [p for p in inspect.signature(AdaptiveAugment.__init__, eval_str=True).parameters.values()
           if p.kind is inspect.Parameter.KEYWORD_ONLY]
    return inspect.Signature(pipeline[1:3] + own + [p for p in pipeline[3:]])


AdaptiveAugment.__signature__ = _signature()
