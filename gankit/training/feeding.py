"""Feeding the GAN step: real batches in the resumable order, and the latents it draws.

Real batches (:class:`Feeder`): each step takes ``train.d_steps`` batches
(one more when G's update takes a fresh real batch: ``train.g_step: fresh``
with a loss that scores reals in G's update, as R3GAN's). ``data.batch_size``
is the step's whole batch; under torchrun each process loads its block of
it (:mod:`gankit.recipe.batching`). The position (epoch, batch within the
epoch) is part of the checkpoint, so a resumed run continues at the very
next batch of the same permutation. A step's batches are all or nothing: a
stop request is honoured between steps, and a step cut short by one rewinds
to where it began.

Latents (:class:`Latents`): z, fake class labels and path length's probes,
asked for by phase (``Gmain``, ``Greg``, ``Dmain``), so the step's draws can
be replaced by given ones (:class:`ReplayedLatents`: another
implementation's recorded draws, fed through the same door).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from gankit.core.errors import DataError
from gankit.data.sampler import ResumableSampler
from gankit.data.workers import worker_failure
from gankit.nn.conditional import check_labels
from gankit.recipe.batching import split_batch

PHASES = ("Gmain", "Greg", "Dmain", "Dreg")  # StyleGAN2-ADA's names; every step's draws are asked for by them


class Latents:
    """z, fake labels and probes for the GAN step, from the run's latent stream.

    Each z (and label) draw is the whole step's, every process's share
    together, from ``generator``, which every process seeds alike; this
    process takes its block. So a step draws the same latents whether its
    batch is split over processes or into accumulation rounds. Fake labels
    are drawn from ``label_pool`` (the training set's labels: each class as
    frequent as among the reals), or uniformly over ``classes`` when the
    dataset does not list its labels. Probes (path length's y) come from the
    training's global stream, as noise inputs and style mixing do.
    """

    def __init__(self, nz: int, classes: int | None = None, label_pool: Tensor | None = None,
                 generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                 rank: int = 0, world: int = 1):
        self.nz, self.classes, self.generator = nz, classes, generator
        self.device = torch.device(device)
        self.label_pool = None if label_pool is None else label_pool.to(self._draw_device)
        self.rank, self.world = rank, world

    @property
    def _draw_device(self) -> torch.device:
        return self.generator.device if self.generator is not None else self.device

    def _mine(self, values: Tensor, n: int) -> Tensor:
        return values[self.rank * n:(self.rank + 1) * n].to(self.device)

    def z(self, phase: str, n: int) -> Tensor:
        """``n`` latents (this process's) for ``phase``: N(0, I), ``n x nz``."""
        return self._mine(torch.randn(n * self.world, self.nz, generator=self.generator, device=self._draw_device), n)

    def labels(self, phase: str, n: int) -> Tensor | None:
        """``n`` fake class labels for ``phase`` (None for an unconditional generator)."""
        if self.classes is None:
            return None
        if self.label_pool is None:
            drawn = torch.randint(self.classes, (n * self.world,), generator=self.generator, device=self._draw_device)
        else:
            pick = torch.randint(len(self.label_pool), (n * self.world,), generator=self.generator,
                                 device=self._draw_device)
            drawn = self.label_pool[pick]
        return self._mine(drawn, n)

    def probe(self, phase: str, like: Tensor) -> Tensor:
        """N(0, I) of ``like``'s shape (path length's y before its 1/√(H·W))."""
        return torch.randn_like(like)


class ReplayedLatents:
    """Draws given in advance, handed out in order per phase: ``{phase: [tensor, ...]}`` for z, labels
    (int64 classes) and probes. A draw asked for and not given, or of another size, is an error."""

    def __init__(self, z: dict[str, list[Tensor]] | None = None, labels: dict[str, list[Tensor]] | None = None,
                 probes: dict[str, list[Tensor]] | None = None):
        self.given = {"z": {k: list(v) for k, v in (z or {}).items()},
                      "labels": {k: list(v) for k, v in (labels or {}).items()},
                      "probes": {k: list(v) for k, v in (probes or {}).items()}}

    def _next(self, kind: str, phase: str, rows: int) -> Tensor:
        queue = self.given[kind].get(phase)
        if not queue:
            raise IndexError(f"no {kind} given for phase {phase} (given: {self.left() or 'nothing left'})")
        value = queue.pop(0)
        if value.shape[0] != rows:
            raise ValueError(f"phase {phase} asked for {rows} {kind}, the next given has {value.shape[0]}")
        return value

    def z(self, phase: str, n: int) -> Tensor:
        return self._next("z", phase, n)

    def labels(self, phase: str, n: int) -> Tensor | None:
        if phase not in self.given["labels"]:
            return None  # an unconditional run is given none
        return self._next("labels", phase, n)

    def probe(self, phase: str, like: Tensor) -> Tensor:
        value = self._next("probes", phase, like.shape[0])
        return value.reshape(like.shape).to(like.device, like.dtype)

    def left(self) -> dict[str, int]:
        """``{'kind/phase': draws not asked for}``: empty when every given draw was used."""
        return {f"{kind}/{phase}": len(q) for kind, queues in self.given.items() for phase, q in queues.items() if q}


class Feeder:
    """Real batches for the GAN step; ``epoch`` and ``batch_in_epoch`` say where it is."""

    def __init__(self, recipe, dataset, world, device: torch.device, make_loader: Callable, classes: int | None,
                 batches_per_step: int | None = None):
        d = recipe.data
        self.recipe, self.device, self.world, self.classes = recipe, device, world, classes
        self.batches_per_step = batches_per_step or recipe.train.d_steps
        # This process's share of each step's batch (the whole batch without torchrun).
        self.batch_size, _ = split_batch(d.batch_size, world.size, recipe.train.accumulate)
        self.sampler = ResumableSampler(len(dataset), recipe.seed, rank=world.rank, world=world.size,
                                        block=self.batch_size if world.distributed else None)
        n = self.sampler.per_rank  # each rank's share of an epoch
        self.batches_per_epoch = n // self.batch_size if d.drop_last else math.ceil(n / self.batch_size)
        if self.batches_per_epoch == 0:
            raise DataError(f"data.batch_size {d.batch_size} is larger than the dataset ({len(dataset)} images"
                            + (f", {n} per rank of {world.size}" if world.distributed else "")
                            + ") with data.drop_last: true")
        self.loader = make_loader(self.sampler, self.batch_size)
        self.epoch = self.batch_in_epoch = 0

    def close(self) -> None:
        """Stop the loader's worker processes now: a persistent loader keeps them until it is collected, which
        in a notebook (the traceback of a stopped run held by the kernel) may be never."""
        iterator = getattr(self.loader, "_iterator", None)  # torch's DataLoader keeps its persistent iterator here
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        if getattr(self.loader, "_iterator", None) is not None:
            self.loader._iterator = None  # the next epoch, if any, starts new workers

    def groups(self, more: Callable[[], bool], stopping: Callable[[], bool],
               on_bad: Callable[[list], None]) -> Iterator[list[tuple[torch.Tensor, torch.Tensor | None]]]:
        """Each step's real batches on the device (``batches_per_step`` of them: D's, then G's own when it
        takes one), while ``more()`` and not ``stopping()``.

        ``on_bad`` receives each batch's unreadable images (it raises, or counts them).
        """
        r = self.recipe
        group: list = []
        start = (self.epoch, self.batch_in_epoch)  # where the pending step's batches begin
        while more() and (group or not stopping()):
            if self.batch_in_epoch >= self.batches_per_epoch:
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            self.sampler.set_position(self.epoch, self.batch_in_epoch * self.batch_size)
            batches = iter(self.loader)
            while more() and (group or not stopping()):
                try:
                    images, labels, bad = next(batches)
                except StopIteration:
                    self.batch_in_epoch = self.batches_per_epoch  # the epoch is over
                    break
                except Exception as exc:
                    if stopping():  # a worker was hit by the same Ctrl-C: the step never happened
                        self.epoch, self.batch_in_epoch = start
                        return
                    failure = worker_failure(exc, r.data.name)
                    if failure is None:
                        raise
                    raise failure from None
                self.batch_in_epoch += 1
                if bad:
                    on_bad(bad)
                if images is None:  # every image of the batch was unreadable and skipped
                    if self.world.distributed:  # this rank would fall a batch behind the others: say so, not hang
                        raise DataError(f"a whole batch of unreadable images at epoch {self.epoch}, batch "
                                        f"{self.batch_in_epoch} on rank {self.world.rank}; under torchrun "
                                        "remove the unreadable files, or train without torchrun")
                    continue
                if self.classes is not None:
                    check_labels(labels, self.classes, r.data.name)
                    labels = labels.to(self.device, non_blocking=True)
                group.append((images.to(self.device, non_blocking=True), labels if self.classes is not None else None))
                if len(group) < self.batches_per_step:
                    continue
                yield group
                group, start = [], (self.epoch, self.batch_in_epoch)
