"""``imagefolder``: any folder tree of image files, with class folders as labels.

Includes the DCGAN tutorial's layout (``root/img_align_celeba/*.jpg``).
"""

from __future__ import annotations

import os
from typing import Literal

from gankit.core.registry import component
from gankit.data.files import LAYOUT, ImageFiles, folder_labels, scan
from gankit.data.transforms import check_shape


@component("datasets", "imagefolder")
def imagefolder(root: str, image_size: int = 64, channels: int = 3,
                resize: Literal["antialias", "lanczos"] = "antialias") -> ImageFiles:
    """Every image under ``root``; label = index of its top-level folder (sorted), -1 if in root.

    ``resize: lanczos`` prepares the images as the official StyleGAN2-ADA and
    R3GAN ``dataset_tool.py`` (centre square, Lanczos); ``antialias`` is the
    tutorial's (see :func:`gankit.data.transforms.transform`).
    """
    check_shape(image_size, channels)
    root = os.path.expanduser(root)
    paths = scan(root, "imagefolder", LAYOUT, "point data.root at the folder that holds the images")
    labels, classes = folder_labels(paths)
    return ImageFiles(root, paths, labels, image_size, channels, classes, resize=resize)
