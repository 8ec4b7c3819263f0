"""Batches of a cached dataset in the trainer's data order, without per-item Python work.

    loader = CachedBatches(cached, batch_size, sampler, device, drop_last=False)
    sampler.set_position(epoch, start)        # or loader.set_position(epoch, start)
    for images, labels, bad in loader:        # images on `device`, float in [-1, 1]; bad is always []
        ...

A drop-in for the trainer's ``DataLoader(dataset, batch_size, sampler=sampler,
collate_fn=collate, drop_last=...)`` over the same items: each ``iter()``
takes ``sampler.order(sampler.epoch)[sampler.start:]`` (the same permutation
of the same seed, computed the same way on the CPU) and cuts it into batches,
so batches, epochs and a resume mid-epoch are exactly those of the
DataLoader. Each batch is one gather of uint8 rows and one conversion:

- resident (the default on CUDA when the images take at most half the free
  memory): the uint8 images and the epoch's order live on the device, and a
  batch is gathered and converted there;
- otherwise the batch is gathered from the memory-mapped file on the CPU,
  into pinned memory when the device is CUDA, copied without blocking as
  uint8 (a quarter of float32's bytes), and converted on the device.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gankit.data.cache import CachedDataset, to_float

if TYPE_CHECKING:  # only its interface is used: size, epoch, start, order(epoch), set_position
    from gankit.data.sampler import ResumableSampler

RESIDENT_FRACTION = 0.5  # of the device's free memory; the rest is the models' and activations'


def fits_on_device(nbytes: int, device: torch.device, fraction: float = RESIDENT_FRACTION) -> bool:
    """Whether ``nbytes`` of data should live on ``device``: CUDA with enough free memory."""
    if device.type != "cuda":
        return False
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= fraction * free


class CachedBatches:
    """``(images, labels, [])`` batches of ``cache`` in ``sampler``'s order, on ``device``.

    ``images``: ``dtype`` (float32 by default: the values the dataset's own
    items have) in ``memory_format``; ``labels``: int64, on ``device`` too.
    ``resident``: keep the uint8 images on the device (None: when they fit,
    see :func:`fits_on_device`; True on the CPU: read the file into memory).
    ``mirror``: the items of :class:`gankit.data.mirror.Mirrored` (the cache,
    then its x-flipped copy: the sampler covers twice the cache).
    """

    def __init__(self, cache: CachedDataset, batch_size: int, sampler: ResumableSampler,
                 device: torch.device | str = "cpu", drop_last: bool = False, resident: bool | None = None,
                 dtype: torch.dtype = torch.float32, memory_format: torch.memory_format = torch.contiguous_format,
                 mirror: bool = False):
        self.mirror = mirror
        items = len(cache) * (2 if mirror else 1)
        if sampler.size != items:
            raise ValueError(f"the sampler covers {sampler.size} items but the cache holds {items}"
                             + (" (mirrored)" if mirror else ""))
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.cache = cache
        self.batch_size = batch_size
        self.sampler = sampler
        self.device = torch.device(device)
        self.drop_last = drop_last
        self.dtype = dtype
        self.memory_format = memory_format
        nbytes = cache.images.numel() * cache.images.element_size()
        self.resident = fits_on_device(nbytes, self.device) if resident is None else bool(resident)
        if self.resident:
            # .clone() on the CPU: a private copy in memory instead of the file's pages
            self._images = cache.images.to(self.device) if self.device.type != "cpu" else cache.images.clone()
            self._labels = cache.labels.to(self.device)
        else:
            self._images, self._labels = cache.images, cache.labels
        self._pinned = self.device.type == "cuda" and not self.resident

    def set_position(self, epoch: int, start: int) -> None:
        """The next ``iter()`` runs epoch ``epoch`` from its ``start``-th index (the sampler's own method)."""
        self.sampler.set_position(epoch, start)

    def __len__(self) -> int:
        """Batches the next ``iter()`` yields (as ``len(DataLoader)``)."""
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        # The order is taken now, not at the first next(): a later set_position affects the next iter() only.
        order = torch.as_tensor(self.sampler.order(self.sampler.epoch)[self.sampler.start:], dtype=torch.int64)
        if self.resident:
            order = order.to(self.device)
        return self._batches(order)

    def _batches(self, order: Tensor):
        n = order.shape[0]
        stop = n - n % self.batch_size if self.drop_last else n
        size = len(self.cache)
        for i in range(0, stop, self.batch_size):
            idx = order[i : i + self.batch_size]
            if self.mirror:  # items N..2N-1: the images of 0..N-1, flipped left-right
                flipped, idx = idx >= size, idx % size
            images, labels = self._gather(idx)
            if self.mirror:
                images = torch.where(flipped.to(images.device)[:, None, None, None], images.flip(-1), images)
            out = to_float(images, self.dtype)
            if self.memory_format is not torch.contiguous_format:
                out = out.contiguous(memory_format=self.memory_format)
            yield out, labels, []

    def _gather(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        if self.resident or self.device.type == "cpu":
            return self._images.index_select(0, idx), self._labels.index_select(0, idx)
        shape = (idx.shape[0], *self._images.shape[1:])
        # A fresh pinned buffer per batch: the caching host allocator reuses it only after its copy is done.
        images = torch.empty(shape, dtype=torch.uint8, pin_memory=self._pinned)
        labels = torch.empty(idx.shape[0], dtype=torch.int64, pin_memory=self._pinned)
        torch.index_select(self._images, 0, idx, out=images)
        torch.index_select(self._labels, 0, idx, out=labels)
        return images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
