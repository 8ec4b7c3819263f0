"""Folders of image files: finding them, labelling them by class folder, and the dataset that decodes them.

Files are listed (not opened) when a dataset is built, so a 200,000-image
folder builds in seconds; each image is decoded when the loader asks for it.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import torch
from torch.utils.data import Dataset

from gankit.data.common import BadImage
from gankit.data.transforms import check_shape, try_load_image
from gankit.core.errors import DataError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
LAYOUT = "image files (jpg, png, ...) in root or in class folders root/<class>/..."


def find_images(root: str) -> tuple[list[str], Counter]:
    """Image paths under ``root`` relative to it (recursive, sorted), and other files' extensions.

    Symlinks are followed, but a folder that links back to one of its own
    ancestors is not entered again, so symlink loops end. Hidden files and
    folders (``.ipynb_checkpoints``, macOS ``._x.jpg``) are skipped.
    """
    images: list[str] = []
    others: Counter = Counter()
    stack: list[tuple[str, frozenset]] = [("", frozenset())]
    while stack:
        rel, ancestors = stack.pop()
        try:
            st = os.stat(os.path.join(root, rel))
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                continue  # a link back up the tree: entering it would loop
            with os.scandir(os.path.join(root, rel)) as it:
                entries = list(it)
        except OSError:  # unreadable folder, broken or looping link: nothing to list
            continue
        ancestors = ancestors | {key}
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = os.path.join(rel, entry.name) if rel else entry.name
            try:
                if entry.is_dir():
                    stack.append((path, ancestors))
                elif entry.is_file():
                    ext = os.path.splitext(entry.name)[1].lower()
                    if ext in IMAGE_EXTENSIONS:
                        images.append(path)
                    else:
                        others[ext or entry.name] += 1
            except OSError:
                continue
    images.sort(key=lambda p: p.split(os.sep))
    return images, others


def scan(root: str, what: str, layout: str, hint: str = "") -> list[str]:
    """:func:`find_images`, or a :class:`DataError` naming ``root``, the layout and ``hint``."""
    tail = f"\n    expected: {layout}" + (f"\n    {hint}" if hint else "")
    if not os.path.exists(root):
        raise DataError(f"{what}: '{root}' does not exist{tail}")
    if not os.path.isdir(root):
        raise DataError(f"{what}: '{root}' is not a folder{tail}")
    images, others = find_images(root)
    if not images:
        found = ", ".join(f"{n} {ext}" for ext, n in others.most_common(5))
        seen = f" (found only: {found})" if found else " (no files in it or its subfolders)"
        exts = "/".join(sorted(e[1:] for e in IMAGE_EXTENSIONS))
        raise DataError(f"{what}: no image files ({exts}) under '{root}'{seen}{tail}")
    return images


class ImageFiles(Dataset):
    """Image files under ``root`` with int labels, decoded one by one."""

    def __init__(self, root: str, paths: list[str], labels: list[int], image_size: int, channels: int,
                 classes: list[str] | None = None, resize: str = "antialias"):
        check_shape(image_size, channels)
        self.resize = resize  # see gankit.data.transforms.transform
        self.root = root
        # Byte strings in one numpy array, not a list of str: forked DataLoader
        # workers would otherwise copy the pages of 200k refcounted objects.
        self._paths = np.array([os.fsencode(p) for p in paths], dtype=np.bytes_)
        self._labels = np.asarray(labels, dtype=np.int64)
        self.image_size = image_size
        self.channels = channels
        self.classes = list(classes or [])

    def __len__(self) -> int:
        return len(self._paths)

    def path(self, index: int) -> str:
        """The full path of item ``index``."""
        return os.path.join(self.root, os.fsdecode(self._paths[index]))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | BadImage:
        image = try_load_image(self.path(index), self.image_size, self.channels, self.resize)
        if isinstance(image, BadImage):
            return image
        return image, int(self._labels[index])


def folder_labels(paths: list[str]) -> tuple[list[int], list[str]]:
    """Labels from top-level folders (sorted names -> 0, 1, ...); -1 for files directly in root."""
    tops = [p.split(os.sep, 1)[0] if os.sep in p else None for p in paths]
    classes = sorted({t for t in tops if t is not None})
    index = {c: i for i, c in enumerate(classes)}
    return [index[t] if t is not None else -1 for t in tops], classes
