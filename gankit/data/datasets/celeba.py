"""``celeba``: CelebA's aligned faces in the DCGAN tutorial's layout, unlabelled.

``root/img_align_celeba/000001.jpg ... 202599.jpg``. torchvision's download
puts the same folder one level down (``root/celeba/img_align_celeba``), so
that is accepted too.
"""

from __future__ import annotations

import os

from gankit.data.files import ImageFiles, scan
from gankit.data.transforms import check_shape
from gankit.core.errors import DataError
from gankit.core.registry import component

FOLDER = "img_align_celeba"
LAYOUT = "root/img_align_celeba/000001.jpg, 000002.jpg, ... (the DCGAN tutorial's layout)"
MANUAL = (
    "get CelebA from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive: "
    "Img/img_align_celeba.zip) and unzip it into root so that root/img_align_celeba/000001.jpg exists"
)
HOW_TO_GET = MANUAL + ", or set data.download: true to fetch it with torchvision"


def _candidates(root: str) -> list[str]:
    return [os.path.join(root, FOLDER), os.path.join(root, "celeba", FOLDER)]


def _download(root: str) -> None:
    try:
        from torchvision.datasets import CelebA

        CelebA(root, split="all", download=True)
    except Exception as exc:  # no network, Google Drive quota, a bad zip: say what to do instead
        raise DataError(
            f"celeba: downloading CelebA into '{root}' failed ({type(exc).__name__}: {exc})\n"
            f"    {MANUAL}"
        ) from None


def _missing(root: str) -> DataError:
    """The error for a root without img_align_celeba, with a hint fitted to what is there."""
    where = f"celeba: no '{FOLDER}' folder in '{root}'"
    hint = HOW_TO_GET
    if not os.path.isdir(root):
        where = f"celeba: '{root}' does not exist"
    else:
        names = os.listdir(root)
        if f"{FOLDER}.zip" in names:
            hint = f"'{os.path.join(root, FOLDER + '.zip')}' is still zipped: unzip it in '{root}'"
        elif any(n.lower().endswith((".jpg", ".jpeg", ".png")) for n in names):
            hint = (
                f"the images sit directly in '{root}'; move them into '{os.path.join(root, FOLDER)}' "
                "or use dataset 'imagefolder' with this root"
            )
    return DataError(f"{where}\n    expected: {LAYOUT}\n    {hint}")


@component("datasets", "celeba")
def celeba(root: str = "data/celeba", download: bool = False, image_size: int = 64,
           channels: int = 3) -> ImageFiles:
    """CelebA's aligned faces from ``root/img_align_celeba`` (label -1); downloads if asked."""
    check_shape(image_size, channels)
    root = os.path.expanduser(root)
    folder = next((c for c in _candidates(root) if os.path.isdir(c)), None)
    if folder is None and download:
        _download(root)
        folder = next((c for c in _candidates(root) if os.path.isdir(c)), None)
    if folder is None:
        raise _missing(root)
    paths = scan(folder, "celeba", LAYOUT, HOW_TO_GET)
    return ImageFiles(folder, paths, [-1] * len(paths), image_size, channels)
