"""The labels of a whole dataset without reading its images: what fake class labels are drawn from.

A conditional GAN's fake images get classes drawn from the training set's
labels (as StyleGAN2-ADA's ``training_set.get_label(np.random.randint(len))``),
so each class is as frequent among the fakes as among the reals. Datasets
that hold their labels as an array say so through ``labels`` (the built-in
array and cached datasets), ``_labels`` (image files), ``targets``
(torchvision's) or ``tensors[1]`` (a TensorDataset).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def dataset_labels(dataset) -> Tensor | None:
    """Every item's int64 label in item order, or None when the dataset does not list them."""
    for name in ("labels", "_labels", "targets"):
        labels = getattr(dataset, name, None)
        if labels is not None:
            break
    else:
        tensors = getattr(dataset, "tensors", None)
        labels = tensors[1] if isinstance(tensors, tuple) and len(tensors) > 1 else None
    if labels is None:
        return None
    labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, Tensor) else labels).reshape(-1)
    if labels.numel() != len(dataset) or labels.dtype.is_floating_point:
        return None  # not one class id per item
    return labels.to(torch.int64)
