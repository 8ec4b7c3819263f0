"""A digest of a dataset's source that changes when the source does (the data cache's staleness check).

Image folders: every file's path, size and modification time (a stat per
file, no reading: CelebA's 202,599 files take a second or two). In-memory
arrays (MNIST, CIFAR-10's python batches, ``digits``): their bytes.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from gankit.data.files import ImageFiles
from gankit.data.transforms import ArrayImages


def source_fingerprint(dataset: Dataset) -> str | None:
    """A digest that changes when the dataset's source does; None when gankit cannot tell.

    A dataset (a plugin's, say) can provide its own: a ``cache_fingerprint()``
    method returning a string.
    """
    own = getattr(dataset, "cache_fingerprint", None)
    if callable(own):
        return str(own())
    h = hashlib.sha256()
    if isinstance(dataset, ImageFiles):
        h.update(os.fsencode(os.path.abspath(dataset.root)) + b"\0")
        for i in range(len(dataset)):
            path = dataset.path(i)
            try:
                st = os.stat(path)
                stamp = f"{st.st_size}\0{st.st_mtime_ns}"
            except OSError:
                stamp = "missing"
            h.update(os.fsencode(path) + b"\0" + stamp.encode() + b"\n")
        h.update(np.asarray(dataset._labels, dtype="<i8").tobytes())
    elif isinstance(dataset, ArrayImages):
        for array in (dataset.images, dataset.labels):
            h.update(f"{array.dtype.str}{array.shape}".encode())
            h.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    elif isinstance(dataset, TensorDataset):
        for t in dataset.tensors:
            t = t.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()).cast("B") if t.numel() else b"")
    else:
        return None
    return h.hexdigest()
