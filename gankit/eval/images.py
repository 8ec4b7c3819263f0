"""Images as evaluation sees them: uint8, quantised one way for real and generated alike.

Datasets and generators give float images in [-1, 1]; image files give uint8.
Both real and generated floats are quantised by the same rule,

    u = clamp(round((x + 1) * 127.5), 0, 255)

(round half to even), so an image that went through a PNG file and the same
image straight from memory give identical features.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from gankit.data.common import BadImage
from gankit.eval.errors import EvalError

QUANTISATION = "uint8 = clamp(round((x + 1) * 127.5), 0, 255), round half to even"
EXTENSIONS = (".png", ".jpg", ".jpeg")  # what torch-fidelity picks up in a folder


def quantise(images: Tensor) -> Tensor:
    """Float images in [-1, 1] -> uint8 in 0..255 (uint8 input is returned unchanged)."""
    if images.dtype == torch.uint8:
        return images
    if not torch.isfinite(images).all():
        raise EvalError("images to evaluate contain NaN or infinite values (has the generator diverged?)")
    return ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def _item_of(item) -> tuple[Tensor | None, int]:
    """The image and class label of a dataset item: ``(image, label)`` or a bare image (label -1); a
    :class:`BadImage` gives no image."""
    if isinstance(item, BadImage):
        return None, -1
    label = -1
    if isinstance(item, (tuple, list)):
        item, label = item[0], (item[1] if len(item) > 1 else -1)
    if not isinstance(item, Tensor) or item.dim() != 3:
        raise EvalError(
            f"dataset items must be (image, label) with a C x H x W image tensor, got {type(item).__name__}"
        )
    try:
        label = int(label)
    except (TypeError, ValueError):
        label = -1  # not a class label (an attribute vector, a caption): per-class metrics refuse
    return item, label


def labelled_batches(dataset: Dataset, indices: Iterable[int], batch_size: int,
                     limit: int | None = None) -> Iterator[tuple[Tensor, Tensor]]:
    """uint8 batches of the items at ``indices`` with their class labels (-1: none), skipping bad images, at
    most ``limit`` images.

    Images of different sizes (image folders) are batched separately; the
    extractors resize each one themselves. Each batch is quantised at once
    (the same rule per pixel as one image at a time).
    """
    pending: list[Tensor] = []
    labels: list[int] = []
    taken = 0
    for i in indices:
        if limit is not None and taken >= limit:
            break
        image, label = _item_of(dataset[i])
        if image is None:
            continue
        if pending and (pending[0].shape != image.shape or pending[0].dtype != image.dtype):
            yield quantise(torch.stack(pending)), torch.tensor(labels, dtype=torch.int64)
            pending, labels = [], []
        pending.append(image)
        labels.append(label)
        taken += 1
        if len(pending) == batch_size:
            yield quantise(torch.stack(pending)), torch.tensor(labels, dtype=torch.int64)
            pending, labels = [], []
    if pending:
        yield quantise(torch.stack(pending)), torch.tensor(labels, dtype=torch.int64)


def batches(dataset: Dataset, indices: Iterable[int], batch_size: int, limit: int | None = None) -> Iterator[Tensor]:
    """The images of :func:`labelled_batches`."""
    for images, _ in labelled_batches(dataset, indices, batch_size, limit):
        yield images


def subset(n_total: int, n_wanted: int | None, generator: torch.Generator) -> list[int]:
    """The indices to read: all in order when ``n_wanted`` covers the set, else a seeded random order.

    A random order (not just n indices) so that skipped bad images are
    replaced by the next ones, deterministically.
    """
    if n_wanted is None or n_wanted >= n_total:
        return list(range(n_total))
    return torch.randperm(n_total, generator=generator).tolist()


class ImageFolder(Dataset):
    """The .png/.jpg/.jpeg files directly inside a folder, sorted, as RGB uint8 tensors.

    The same files, order and conversion as torch-fidelity's folder input
    (PIL ``convert("RGB")``, no resizing).
    """

    def __init__(self, root: str | Path, what: str = "image folder"):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise EvalError(f"{what} '{self.root}' is not a folder")
        self.files = sorted(
            os.path.realpath(p) for p in self.root.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS
        )
        if not self.files:
            raise EvalError(f"{what} '{self.root}' has no {'/'.join(e[1:] for e in EXTENSIONS)} images")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        from PIL import Image
        from torchvision.transforms.functional import pil_to_tensor

        path = self.files[index]
        try:
            with Image.open(path) as img:
                return pil_to_tensor(img.convert("RGB"))
        except OSError as exc:
            return BadImage(path, f"{type(exc).__name__}: {exc}")

    def fingerprint(self) -> str:
        """Names, sizes and modification times: a changed file means a new reference."""
        digest = hashlib.sha256()
        for path in self.files:
            st = os.stat(path)
            digest.update(f"{os.path.basename(path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def identity(self) -> dict:
        return {
            "dataset": "folder",
            "root": str(self.root.resolve()),
            "split": None,
            "transform": "files as stored, converted to RGB",
            "num_images": len(self.files),
            "fingerprint": self.fingerprint()[:16],
        }

