"""What every dataset shares: the bad-image marker and the batch collation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import default_collate


@dataclass(frozen=True)
class BadImage:
    """Returned by a dataset instead of ``(image, label)`` when a file cannot be read.

    The loader then stops with an error naming the file, or skips and counts
    it, as the recipe's ``data.on_bad_image`` says. (Returning a marker rather
    than raising keeps the decision in the main process, where the message can
    be clean, also when the file was read in a worker process.)
    """

    path: str
    reason: str


def collate(items: list) -> tuple[torch.Tensor | None, torch.Tensor | None, list[BadImage]]:
    """``(images, labels, bad)``: the good items stacked, and the bad ones listed."""
    bad = [it for it in items if isinstance(it, BadImage)]
    good = [it for it in items if not isinstance(it, BadImage)]
    if not good:
        return None, None, bad
    images, labels = default_collate(good)
    return images, labels, bad
