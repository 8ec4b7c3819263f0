"""``digits``: scikit-learn's 1,797 real 8x8 handwritten digits, upsampled.

Embedded in scikit-learn, so it needs no download: the quickstart's data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset


class _LabelledImages(TensorDataset):
    def __getitem__(self, index):
        image, label = super().__getitem__(index)
        return image, int(label)


def digits(image_size: int = 32, channels: int = 1) -> TensorDataset:
    """All 1,797 digits as ``channels x image_size x image_size`` tensors in [-1, 1], labels 0-9."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # 0..16 -> 0..1
    images = F.interpolate(images, size=(image_size, image_size), mode="bicubic", align_corners=False)
    images = images.clamp(0, 1).mul(2).sub(1)  # Normalize(0.5, 0.5), as the tutorial
    images = images.expand(-1, channels, -1, -1).contiguous()
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    return _LabelledImages(images, labels)
