"""Feeding the GAN step: real batches in the resumable order, grouped ``train.d_steps`` to a step.

The position (epoch, batch within the epoch) is part of the checkpoint, so a
resumed run continues at the very next batch of the same permutation. A
step's batches are all or nothing: a stop request is honoured between steps,
and a step cut short by one rewinds to where it began.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from gankit.core.errors import DataError
from gankit.data.sampler import ResumableSampler
from gankit.data.workers import worker_failure
from gankit.nn.conditional import check_labels


class Feeder:
    """Real batches for the GAN step; ``epoch`` and ``batch_in_epoch`` say where it is."""

    def __init__(self, recipe, dataset, world, device: torch.device, make_loader: Callable, classes: int | None):
        d = recipe.data
        self.recipe, self.device, self.world, self.classes = recipe, device, world, classes
        self.sampler = ResumableSampler(len(dataset), recipe.seed, rank=world.rank, world=world.size)
        n = self.sampler.per_rank  # each rank's share of an epoch
        self.batches_per_epoch = n // d.batch_size if d.drop_last else math.ceil(n / d.batch_size)
        if self.batches_per_epoch == 0:
            raise DataError(f"data.batch_size {d.batch_size} is larger than the dataset ({n} images"
                            + (f" per rank of {world.size}" if world.distributed else "")
                            + ") with data.drop_last: true")
        self.loader = make_loader(self.sampler)
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
        """Each step's ``d_steps`` real batches on the device, while ``more()`` and not ``stopping()``.

        ``on_bad`` receives each batch's unreadable images (it raises, or counts them).
        """
        r = self.recipe
        group: list = []
        start = (self.epoch, self.batch_in_epoch)  # where the pending step's batches begin
        while more() and (group or not stopping()):
            if self.batch_in_epoch >= self.batches_per_epoch:
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            self.sampler.set_position(self.epoch, self.batch_in_epoch * r.data.batch_size)
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
                if len(group) < r.train.d_steps:
                    continue
                yield group
                group, start = [], (self.epoch, self.batch_in_epoch)
