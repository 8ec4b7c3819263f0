"""A shuffling sampler whose order depends only on (seed, epoch), so a run can
stop anywhere and resume at the same position of the same epoch."""

from __future__ import annotations

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """Each epoch a fresh permutation from ``(seed, epoch)``, started at ``start``."""

    def __init__(self, size: int, seed: int, shuffle: bool = True):
        self.size = size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        """Iterate epoch ``epoch`` from its ``start``-th index on."""
        self.epoch, self.start = epoch, start

    def order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        # A private generator: the data order never draws from the training's streams.
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
        return torch.randperm(self.size, generator=g).tolist()

    def __iter__(self):
        return iter(self.order(self.epoch)[self.start :])

    def __len__(self) -> int:
        return self.size - self.start
