"""``mnist``: the MNIST digits from their original IDX files, labels 0-9.

The files are read here rather than through torchvision so that only the
requested split has to exist and a damaged file gets an error naming it.
Looked for in ``root``, ``root/raw`` and ``root/MNIST/raw`` (where
torchvision downloads them), gzipped or not.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from typing import Literal

import numpy as np

from gankit.data.transforms import ArrayImages, check_shape
from gankit.core.errors import DataError
from gankit.core.registry import component

PREFIX = {"train": "train", "test": "t10k"}
# (file kind, IDX magic number, number of dimensions)
IMAGES = ("images", 0x00000803, 3)  # unsigned bytes, 3-D: count x rows x cols
LABELS = ("labels", 0x00000801, 1)  # unsigned bytes, 1-D: count
HOW_TO_GET = (
    "set data.download: true to fetch it with torchvision (into root/MNIST/raw), or put the files "
    "from https://ossci-datasets.s3.amazonaws.com/mnist/ (mirror of yann.lecun.com/exdb/mnist) in root"
)


def _dirs(root: str) -> list[str]:
    return [root, os.path.join(root, "raw"), os.path.join(root, "MNIST", "raw")]


def _names(split: str, kind: tuple) -> list[str]:
    """torchvision's names first, then the dotted spelling some mirrors use; plain before gzipped."""
    idx = f"idx{kind[2]}-ubyte"
    stems = [f"{PREFIX[split]}-{kind[0]}-{idx}", f"{PREFIX[split]}-{kind[0]}.{idx}"]
    return [s + gz for gz in ("", ".gz") for s in stems]


def find_file(root: str, split: str, kind: tuple) -> str | None:
    """The first existing file for ``split`` and ``kind`` in the searched folders."""
    for folder in _dirs(root):
        for name in _names(split, kind):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    return None


def read_idx(path: str, kind: tuple) -> np.ndarray:
    """The uint8 array in IDX file ``path``, after checking its magic number and size."""
    name, magic, ndim = kind
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; a cut-off gzip is EOFError
        raise DataError(f"mnist: cannot read '{path}' ({type(exc).__name__}: {exc}); re-download it") from None
    header = 4 + 4 * ndim
    got = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if got != magic:
        shown = "none (file shorter than 4 bytes)" if got is None else f"{got:#010x}"
        raise DataError(
            f"mnist: '{path}' is not an IDX {name} file: magic number {shown}, expected {magic:#010x}"
            "\n    the file is damaged or not MNIST (an HTML error page saved under this name?); re-download it"
        )
    if len(data) < header:
        raise DataError(f"mnist: '{path}' is cut off inside its IDX header; re-download it")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise DataError(
            f"mnist: '{path}' holds {len(data)} bytes but its IDX header "
            f"({' x '.join(map(str, dims))}) needs {expected}; the file is truncated or damaged, re-download it"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _download(root: str, split: str) -> None:
    try:
        from torchvision.datasets import MNIST

        MNIST(root, train=split == "train", download=True)
    except Exception as exc:  # no network, a mirror down: say what to do instead
        raise DataError(
            f"mnist: downloading the {split} split into '{root}' failed ({type(exc).__name__}: {exc})"
            "\n    put the files from https://ossci-datasets.s3.amazonaws.com/mnist/ in root instead"
        ) from None


def _other_split_hint(root: str, split: str) -> str:
    other = "test" if split == "train" else "train"
    found = find_file(root, other, IMAGES)
    return f"\n    ('{found}' is the {other} split: set data.split: {other} to use it)" if found else ""


@component("datasets", "mnist")
def mnist(root: str = "data", split: Literal["train", "test"] = "train", download: bool = False,
          image_size: int = 64, channels: int = 3) -> ArrayImages:
    """The MNIST ``split`` (60,000 train / 10,000 test digits), resized like the tutorial; labels 0-9."""
    check_shape(image_size, channels)
    if split not in PREFIX:
        raise DataError(f"mnist: split must be 'train' or 'test', got {split!r}")
    root = os.path.expanduser(root)
    paths = {kind: find_file(root, split, kind) for kind in (IMAGES, LABELS)}
    if None in paths.values() and download:
        _download(root, split)
        paths = {kind: find_file(root, split, kind) for kind in (IMAGES, LABELS)}
    missing = [_names(split, kind)[0] for kind, path in paths.items() if path is None]
    if missing:
        where = ", ".join(f"'{d}'" for d in _dirs(root))
        raise DataError(
            f"mnist: no {' or '.join(missing)} (or .gz) for the {split} split in {where}"
            f"\n    expected: root/MNIST/raw/{_names(split, IMAGES)[0]}[.gz] and "
            f"{_names(split, LABELS)[0]}[.gz] (torchvision's raw layout; root or root/raw work too)"
            f"\n    {HOW_TO_GET}{_other_split_hint(root, split)}"
        )
    images, labels = read_idx(paths[IMAGES], IMAGES), read_idx(paths[LABELS], LABELS)
    if len(images) != len(labels):
        raise DataError(
            f"mnist: '{paths[IMAGES]}' has {len(images)} images but '{paths[LABELS]}' has "
            f"{len(labels)} labels; they must come from the same split"
        )
    return ArrayImages(images, labels, image_size, channels, classes=[str(d) for d in range(10)])
