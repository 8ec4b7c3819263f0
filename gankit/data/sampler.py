"""A shuffling sampler whose order depends only on (seed, epoch), so a run can
stop anywhere and resume at the same position of the same epoch.

Under torchrun each rank takes every ``world``-th index of the epoch's
permutation (starting at its rank), after the permutation is padded with its
own first indices to a multiple of ``world``: every rank gets as many items
(as torch's DistributedSampler does), so the ranks' steps stay in lockstep.

With ``block`` (the trainer's per-process batch) the ranks take consecutive
blocks instead: each step's global batch is the next ``world × block``
indices of the permutation, rank r taking the r-th block of them, so one
process given the whole global batch sees the same images in the same
order as the ranks together (the shorter last batch of an epoch is shared
out every ``world``-th index, so the ranks still get as many items).
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """Each epoch a fresh permutation from ``(seed, epoch)``, this rank's share of it, started at ``start``."""

    def __init__(self, size: int, seed: int, shuffle: bool = True, rank: int = 0, world: int = 1,
                 block: int | None = None):
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not in a world of {world}")
        if block is not None and block < 1:
            raise ValueError(f"block must be a positive number of items, got {block}")
        self.block = block
        self.size = size  # items in the dataset
        self.seed = seed
        self.shuffle = shuffle
        self.rank, self.world = rank, world
        self.per_rank = math.ceil(size / world)  # items per rank and epoch
        self.epoch = 0
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        """Iterate epoch ``epoch`` from its ``start``-th index (of this rank's share) on."""
        self.epoch, self.start = epoch, start

    def order(self, epoch: int) -> list[int]:
        """This rank's indices of epoch ``epoch``, in order."""
        if not self.shuffle:
            full = list(range(self.size))
        else:
            # A private generator: the data order never draws from the training's streams.
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
            full = torch.randperm(self.size, generator=g).tolist()
        if self.world == 1:
            return full
        total = self.per_rank * self.world
        padded = (full * math.ceil(total / self.size))[:total]  # repeated whole when the world outnumbers the items
        if self.block is None:
            return padded[self.rank :: self.world]
        step = self.block * self.world  # one global batch
        whole = total - total % step
        mine = [i for start in range(self.rank * self.block, whole, step) for i in padded[start:start + self.block]]
        return mine + padded[whole + self.rank :: self.world]  # the shorter last batch: strided

    def __iter__(self):
        return iter(self.order(self.epoch)[self.start :])

    def __len__(self) -> int:
        return self.per_rank - self.start
