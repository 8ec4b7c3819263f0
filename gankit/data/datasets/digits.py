"""``digits``: scikit-learn's 1,797 real 8x8 handwritten digits, upsampled.

Embedded in scikit-learn, so it needs no download: the quickstart's data.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from gankit.core.registry import component


class _LabelledImages(TensorDataset):
    def __getitem__(self, index):
        image, label = super().__getitem__(index)
        return image, int(label)


def _load() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 images (values 0..16) and labels, as ``sklearn.datasets.load_digits`` gives them."""
    # Read the file scikit-learn ships without importing scikit-learn (and scipy): ~2 s of the quickstart.
    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt", encoding="utf-8") as f:
                data = np.loadtxt(f, delimiter=",")
            return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits  # a layout of scikit-learn's files this does not know

    bunch = load_digits()
    return bunch.images, bunch.target


@component("datasets", "digits")
def digits(image_size: int = 32, channels: int = 1) -> TensorDataset:
    """All 1,797 digits as ``channels x image_size x image_size`` tensors in [-1, 1], labels 0-9."""
    raw, target = _load()
    images = torch.as_tensor(raw, dtype=torch.float32).unsqueeze(1) / 16.0  # 0..16 -> 0..1
    images = F.interpolate(images, size=(image_size, image_size), mode="bicubic", align_corners=False)
    images = images.clamp(0, 1).mul(2).sub(1)  # Normalize(0.5, 0.5), as the tutorial
    images = images.expand(-1, channels, -1, -1).contiguous()
    labels = torch.as_tensor(target, dtype=torch.int64)
    return _LabelledImages(images, labels)
