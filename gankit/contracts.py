"""What each kind of component must offer, in one place, as ``typing.Protocol`` classes.

gankit never requires a component to subclass anything but what is named
here (losses and metrics subclass gankit's base classes); it relies on the
attributes and call signatures below. ``isinstance(obj, Generator)`` checks
the attributes a Protocol lists (``runtime_checkable``), not the signatures.

- :class:`Generator`, :class:`Discriminator`: the models (``generators``,
  ``discriminators`` registries).
- :class:`Loss`: both players' objectives (``losses``); subclass
  :class:`gankit.losses.GANLoss`.
- :class:`Regularizer`: a penalty added to a player's loss (``regularizers``);
  subclass :class:`gankit.regularizers.Regularizer`, or declare ``player``, ``every`` and ``adjust_optimizer``.
- :class:`Augmentation`: a differentiable transform of D's inputs (``augmentations``);
  :class:`Adaptive` when it steers itself by D's view of the real batch (ADA),
  :class:`HasProbability` when its probability ``p`` can be scheduled.
- :class:`Schedule`: a hyperparameter as a function of the images seen (``schedules``).
- :class:`Stateful`: any component with state to resume (ADA's p, path length's
  running mean): ``state_dict()`` / ``load_state_dict()``. The run state saves
  it in every checkpoint and puts it back on resume
  (:class:`gankit.training.state.RunState`); nothing else needs to change.
- Datasets are functions ``(image_size, channels, **args) -> Dataset`` of
  ``(image in [-1, 1], label)`` items (label -1 when there is none), or
  :class:`gankit.data.BadImage` for an unreadable file.
- Metrics subclass :class:`gankit.eval.metrics.Metric`.

Constructors take keyword arguments, annotated: a recipe's section for the
component is checked against the signature. Generators, discriminators and
datasets receive ``image_size`` and ``channels`` from the recipe's ``data``
section when their signature has them.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

Stats = dict[str, Tensor]


@runtime_checkable
class Generator(Protocol):
    """``G(z)`` or, when class-conditional, ``G(z, labels)``: (N, nz) latents -> (N, C, H, W) images.

    - ``nz``: the latent size; gankit draws z ~ N(0, I) of shape (N, nz).
    - ``num_classes`` (optional): an int makes the generator class-conditional;
      labels are int64 of shape (N,) in [0, num_classes).
    - ``output_range`` (optional): the range of its images, (-1, 1) when absent,
      like the data's. ``None`` says the output is not bounded (StyleGAN2 and
      R3GAN end in a linear layer, as their authors' code does): gankit then
      does not warn about values outside [-1, 1].
    - ``truncate(w, psi)`` or ``mapping(z, labels, truncation_psi=...)``
      (optional): its own truncation trick, used by ``gankit sample --truncation``.
    - ``small_args`` (optional, on the class): keyword arguments that make a
      small, fast instance (narrow widths); gankit's tests build every
      registered model with them, so a family's test settings live in its plugin.
    """

    nz: int

    def __call__(self, z: Tensor, labels: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class Discriminator(Protocol):
    """``D(x)`` or ``D(x, labels)``: (N, C, H, W) images -> (N,) logits (an (N, 1) output is flattened).

    ``num_classes`` (optional) makes it class-conditional, and ``small_args``
    (optional) says what a small one is, as for generators.
    """

    def __call__(self, x: Tensor, labels: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class Loss(Protocol):
    """Both players' objectives. Each method calls D itself and returns ``(loss, stats)``.

    ``stats`` are detached scalar tensors to log (``loss_d``, ``d_real``, ...).
    Labels are passed only to a class-conditional D. A loss whose G objective
    needs D's view of real images sets ``needs_real_for_g = True``; its
    ``g_loss`` is then also given the real batch (``real=``, ``real_labels=``).
    """

    needs_real_for_g: ClassVar[bool]

    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor, *, real_labels: Tensor | None = None,
               fake_labels: Tensor | None = None) -> tuple[Tensor, Stats]: ...

    def g_loss(self, D: nn.Module, fake: Tensor, *, fake_labels: Tensor | None = None) -> tuple[Tensor, Stats]: ...


@runtime_checkable
class Regularizer(Protocol):
    """A penalty: ``penalty(D, real, fake, step, ...) -> (weighted penalty or None, stats)``.

    ``step`` counts D updates (0-based); a lazy regulariser returns None on
    the steps it skips. Labels are passed only to a class-conditional D (the
    built-ins' ``judges`` says whose: "real" or "fake").

    - ``player``: whose loss it adds to, "discriminator" (the signature above)
      or "generator" (``penalty(G, batch_size, step, device)``, StyleGAN2's path length);
    - ``every``: 1 adds it to every update; more makes it lazy, its own update
      on the steps it is due (StyleGAN2), and with ``adjust_optimizer`` the
      player's Adam settings are adjusted for it.
    """

    player: ClassVar[str]
    every: int
    adjust_optimizer: bool

    def penalty(self, D: nn.Module, real: Tensor, fake: Tensor, step: int, *, real_labels: Tensor | None = None,
                fake_labels: Tensor | None = None) -> tuple[Tensor | None, Stats]: ...


@runtime_checkable
class Augmentation(Protocol):
    """``aug(x, generator=g)``: (N, C, H, W) images in [-1, 1] -> augmented images, differentiable in x.

    Every random draw comes from ``generator`` (the run's augmentation stream,
    saved in checkpoints), so a resumed run draws the same transforms.
    """

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor: ...


@runtime_checkable
class Adaptive(Protocol):
    """An augmentation that adapts: after each D update it is shown D's view of the real batch.

    ``stats`` holds ``real_sign`` = E[sign(D(x))] (averaged over the ranks
    under torchrun); ``batch_size`` counts the images behind it, all ranks together.
    """

    def observe(self, stats: Stats, batch_size: int) -> None: ...


@runtime_checkable
class HasProbability(Protocol):
    """An augmentation applied with probability ``p``: logged as ``aug_p``, schedulable as ``augment.p``."""

    p: float


@runtime_checkable
class Stateful(Protocol):
    """A component with state to resume: plain tensors and Python values (``torch.load(weights_only=True)``)."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@runtime_checkable
class Schedule(Protocol):
    """A hyperparameter's value as a function of the number of real images seen so far."""

    def __call__(self, images_seen: float) -> float: ...
