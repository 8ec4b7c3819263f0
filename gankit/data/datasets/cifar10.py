"""``cifar10``: CIFAR-10, from torchvision's python batches or from class folders.

Either ``root/cifar-10-batches-py`` (what torchvision downloads; read with
``torchvision.datasets.CIFAR10``, which checks every file's md5 before it
unpickles anything), or an ImageFolder of class folders at ``root/<split>``
or at ``root`` itself (``root/airplane/*.jpg``, ...). Labels are CIFAR-10's
own class indices (airplane 0 ... truck 9) in both cases.
"""

from __future__ import annotations

import os
from typing import Literal

from torch.utils.data import Dataset

from gankit.data.files import ImageFiles, scan
from gankit.data.transforms import ArrayImages, check_shape
from gankit.core.errors import DataError
from gankit.core.registry import component

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
BATCHES = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
LAYOUT = (
    f"root/{BATCHES}/ (torchvision's python format), or class folders "
    "root/<split>/airplane/*.png ... or root/airplane/*.jpg ..."
)
HOW_TO_GET = (
    f"set data.download: true to fetch it with torchvision, or extract {ARCHIVE} from "
    "https://www.cs.toronto.edu/~kriz/cifar.html into root"
)


def _class_root(root: str, split: str) -> str | None:
    """``root/<split>`` or ``root`` when it holds at least one CIFAR-10 class folder."""
    for folder in (os.path.join(root, split), root):
        if any(os.path.isdir(os.path.join(folder, c)) for c in CLASSES):
            return folder
    return None


def _from_batches(root: str, split: str, download: bool, image_size: int, channels: int) -> ArrayImages:
    from torchvision.datasets import CIFAR10

    try:
        ds = CIFAR10(root, train=split == "train", download=download)
    except Exception as exc:  # missing batch, md5 mismatch, no network
        action = "downloading" if download else "reading"
        raise DataError(
            f"cifar10: {action} '{os.path.join(root, BATCHES)}' failed ({type(exc).__name__}: {exc})"
            f"\n    expected: {LAYOUT}\n    {HOW_TO_GET}; remove a damaged folder first"
        ) from None
    return ArrayImages(ds.data, ds.targets, image_size, channels, list(ds.classes))


def _from_folders(folder: str, image_size: int, channels: int) -> ImageFiles:
    paths = scan(folder, "cifar10", LAYOUT, HOW_TO_GET)
    labels, strays = [], set()
    for p in paths:
        top = p.split(os.sep, 1)[0] if os.sep in p else None
        if top in CLASSES:
            labels.append(CLASSES.index(top))
        else:
            strays.add(top or p)
    if strays:
        shown = ", ".join(sorted(strays)[:5]) + (", ..." if len(strays) > 5 else "")
        raise DataError(
            f"cifar10: images under '{folder}' outside the CIFAR-10 class folders: {shown}"
            f"\n    expected: only the folders {', '.join(CLASSES)}, each holding its images"
            "\n    use dataset 'imagefolder' for other classes"
        )
    return ImageFiles(folder, paths, labels, image_size, channels, CLASSES)


def _missing(root: str) -> DataError:
    where = f"cifar10: '{root}' does not exist" if not os.path.isdir(root) else (
        f"cifar10: neither '{os.path.join(root, BATCHES)}' nor CIFAR-10 class folders in '{root}'"
    )
    hint = HOW_TO_GET
    if os.path.isfile(os.path.join(root, ARCHIVE)):
        hint = f"'{os.path.join(root, ARCHIVE)}' is not extracted: extract it in '{root}' or set data.download: true"
    return DataError(f"{where}\n    expected: {LAYOUT}\n    {hint}")


@component("datasets", "cifar10")
def cifar10(root: str = "data", split: Literal["train", "test"] = "train", download: bool = False,
            image_size: int = 64, channels: int = 3) -> Dataset:
    """The CIFAR-10 ``split`` (50,000 train / 10,000 test), resized like the tutorial; labels 0-9."""
    check_shape(image_size, channels)
    if split not in ("train", "test"):
        raise DataError(f"cifar10: split must be 'train' or 'test', got {split!r}")
    root = os.path.expanduser(root)
    if os.path.isdir(os.path.join(root, BATCHES)):
        return _from_batches(root, split, False, image_size, channels)
    folder = _class_root(root, split)
    if folder is not None:
        return _from_folders(folder, image_size, channels)
    if download:
        return _from_batches(root, split, True, image_size, channels)
    raise _missing(root)
