"""``data.mirror``: the dataset doubled with x-flipped copies, as the official ``--mirror=1``.

    dataset = Mirrored(dataset)        # items 0..N-1 as they are, N..2N-1 the same images flipped left-right

StyleGAN2-ADA and R3GAN train every published model this way
(``training/dataset.py``: ``xflip`` tiles the indices and flips the second
half). The data order is the sampler's over 2N items, so a mirrored run
resumes exactly like any other; evaluation keeps reading the dataset itself
(the official metrics use ``xflip=False``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from gankit.data.common import BadImage


class Mirrored(Dataset):
    """``dataset`` followed by its x-flipped copy (labels unchanged); unreadable items stay :class:`BadImage`."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return 2 * len(self.dataset)

    def __getitem__(self, index: int):
        n = len(self.dataset)
        if not -2 * n <= index < 2 * n:
            raise IndexError(f"index {index} is out of range for {2 * n} items (mirrored)")
        index %= 2 * n
        item = self.dataset[index % n]
        if index < n or isinstance(item, BadImage):
            return item
        image, label = item
        return torch.flip(image, dims=[-1]), label  # mirror x: the last (width) axis

    @property
    def labels(self) -> np.ndarray | torch.Tensor | None:
        """Every item's label (the copies keep theirs), when the dataset lists them."""
        from gankit.data.labels import dataset_labels

        labels = dataset_labels(self.dataset)
        return None if labels is None else torch.cat([labels, labels])
