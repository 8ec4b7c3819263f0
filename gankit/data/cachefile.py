"""The data cache's file: uint8 images and int64 labels, memory-mapped when read.

Layout (one file, so that one ``os.replace`` publishes all of it)::

    images   N x C x H x W uint8, C-contiguous, from byte 0 (page-aligned for mmap)
    labels   N int64, little-endian
    header   UTF-8 JSON: format, key, fingerprint, shape, offsets, skipped files
    length   the header's length in bytes, uint64 little-endian
    magic    b"GANKITU8"

The trailer comes last because images are streamed in as they are decoded
(their number is known only at the end, when unreadable images are skipped),
and because a file that ends in the magic bytes was written to the end.
Nothing in it is unpickled: the header is JSON, the rest raw bytes.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import Tensor

from gankit.core.paths import fsync_dir

FORMAT = 1
MAGIC = b"GANKITU8"
_TAIL = struct.Struct("<Q8s")  # header length, magic


class CacheWriter:
    """Stream uint8 batches into a temporary file beside ``path``; :meth:`commit` renames it into place.

    A writer that is not committed (an error, Ctrl-C) removes its temporary
    file; two writers racing for the same ``path`` each write their own
    complete file, and the last rename wins.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self.tmp = Path(tmp)
        if hasattr(os, "fchmod"):  # mkstemp's 0600 would hide a shared cache folder's files from other users
            os.fchmod(fd, 0o644)
        self.file: BinaryIO = os.fdopen(fd, "wb")
        self.shape: tuple[int, ...] | None = None  # C, H, W of the first batch
        self.count = 0
        self._labels: list[np.ndarray] = []

    def add(self, images: Tensor, labels: Tensor) -> None:
        """Append a uint8 batch ``images`` (n x C x H x W) and its ``labels`` (n)."""
        if self.shape is None:
            self.shape = tuple(images.shape[1:])
        self.file.write(memoryview(images.contiguous().numpy()).cast("B"))
        self._labels.append(labels.to(torch.int64).numpy().astype("<i8", copy=False))
        self.count += images.shape[0]

    def commit(self, header: dict[str, Any]) -> None:
        """Write labels and trailer, flush to disk, and atomically rename over ``path``."""
        labels = np.concatenate(self._labels) if self._labels else np.zeros(0, "<i8")
        images_bytes = self.count * int(np.prod(self.shape or (0,)))
        meta = {**header, "format": FORMAT, "count": self.count, "shape": list(self.shape or ()),
                "labels_offset": images_bytes}
        self.file.write(labels.tobytes())
        text = json.dumps(meta, sort_keys=True).encode()
        self.file.write(text)
        self.file.write(_TAIL.pack(len(text), MAGIC))
        self.file.flush()
        os.fsync(self.file.fileno())  # the data is on disk before the name points at it
        self.file.close()
        os.replace(self.tmp, self.path)
        fsync_dir(self.path.parent)

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.tmp.unlink(missing_ok=True)



def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of a cache file; ValueError when the file is not a complete one."""
    size = path.stat().st_size
    if size < _TAIL.size:
        raise ValueError("shorter than its trailer")
    with open(path, "rb") as f:
        f.seek(size - _TAIL.size)
        length, magic = _TAIL.unpack(f.read(_TAIL.size))
        if magic != MAGIC:
            raise ValueError("no gankit data-cache trailer (not written to the end, or another kind of file)")
        if length > size - _TAIL.size:
            raise ValueError("header length beyond the file")
        f.seek(size - _TAIL.size - length)
        header = json.loads(f.read(length).decode())
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"format {header.get('format') if isinstance(header, dict) else '?'}, expected {FORMAT}")
    count, shape = int(header["count"]), [int(s) for s in header["shape"]]
    images_bytes = count * int(np.prod(shape)) if shape else 0
    if header["labels_offset"] != images_bytes or size != images_bytes + 8 * count + length + _TAIL.size:
        raise ValueError("sizes in the header do not match the file")
    return header


def open_arrays(path: Path, header: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """(images, labels): images memory-mapped (copy-on-write: the file is never written), labels in memory."""
    count, shape = int(header["count"]), tuple(int(s) for s in header["shape"])
    if count == 0:
        return torch.zeros((0, *shape), dtype=torch.uint8), torch.zeros(0, dtype=torch.int64)
    images = np.memmap(path, dtype=np.uint8, mode="c", offset=0, shape=(count, *shape))
    labels = np.fromfile(path, dtype="<i8", count=count, offset=header["labels_offset"])
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64, copy=False))
