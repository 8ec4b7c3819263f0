"""The tutorial's image transform, and reading one image file through it.

Every built-in dataset turns a PIL image into a ``channels x image_size x
image_size`` float32 tensor in [-1, 1] the way the PyTorch DCGAN tutorial does:
Resize(image_size), CenterCrop(image_size), ToTensor, Normalize(0.5, 0.5).
Before that, :func:`to_mode` brings any PIL mode to "L" (1 channel) or "RGB"
(3 channels). :func:`load_image` raises on a file it cannot decode;
:func:`try_load_image` returns a :class:`BadImage` instead, which is what a
dataset's ``__getitem__`` uses.
"""

from __future__ import annotations

import os
import struct
import warnings

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from gankit.data.common import BadImage

MODES = {1: "L", 3: "RGB"}
_HIGH_DEPTH = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")


def check_shape(image_size: int, channels: int) -> None:
    """Reject an image size or channel count no dataset can produce."""
    if channels not in MODES:
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale high-bit-depth pixel values to 0..255 (PIL's own convert clips them)."""
    v = values.astype(np.float64)
    v = np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)
    top = float(v.max()) if v.size else 0.0
    if values.dtype.kind == "f" and top <= 1.0:
        v = v * 255.0  # float images in [0, 1]
    elif top <= 255.0:
        pass  # 8-bit values that happen to be stored in a wider mode
    elif top <= 65535.0:
        v = v / 257.0  # 16-bit: 65535 -> 255 exactly
    else:
        v = v * (255.0 / top)  # anything wider: scale by the largest value
    return np.clip(np.rint(v), 0, 255).astype(np.uint8)


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """RGB with transparent pixels composited onto black.

    Dropping alpha (what ``convert("RGB")`` does) would expose whatever colour
    the transparent pixels happen to store; black is premultiplied alpha.
    """
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """``img`` as "L" (channels 1) or "RGB" (channels 3), whatever its PIL mode."""
    target = MODES[channels]
    if img.mode in _HIGH_DEPTH:
        img = Image.fromarray(_to_uint8(np.asarray(img)))  # a 2-D uint8 array becomes "L"
    if "transparency" in img.info and img.mode in ("P", "L", "RGB"):
        # Palette (or single-colour) transparency: PIL wants RGBA first.
        img = img.convert("RGBA")
    if img.mode in _ALPHA:
        img = _flatten_alpha(img)
    if img.mode != target:
        try:
            img = img.convert(target)
        except ValueError:  # e.g. CMYK or LAB have no direct route to every mode
            img = img.convert("RGB").convert(target)
    return img


RESIZE = ("antialias", "lanczos")


def transform(img: Image.Image, image_size: int, channels: int, resize: str = "antialias") -> torch.Tensor:
    """The tutorial's transform of a PIL image, after :func:`to_mode`.

    ``resize``: ``antialias`` (the tutorial's: the shorter side to
    ``image_size`` with antialiased bilinear, then the centre crop), or
    ``lanczos`` (StyleGAN2-ADA's and R3GAN's ``dataset_tool.py
    --transform=center-crop``: the centre square, then Lanczos to
    ``image_size``).
    """
    # Imported here: torchvision takes seconds to import, and registering the
    # datasets (every gankit command does) must not pay for it.
    import torchvision.transforms.functional as TF

    img = to_mode(img, channels)
    if resize == "lanczos":
        w, h = img.size
        crop = min(w, h)
        img = img.crop(((w - crop) // 2, (h - crop) // 2, (w + crop) // 2, (h + crop) // 2))
        img = img.resize((image_size, image_size), Image.LANCZOS)
    else:
        img = TF.resize(img, image_size, antialias=True)
        img = TF.center_crop(img, [image_size, image_size])
    tensor = TF.to_tensor(img)
    return TF.normalize(tensor, [0.5] * channels, [0.5] * channels)


# What PIL raises for a file it cannot decode: corrupt or truncated data, an unknown format
# (UnidentifiedImageError is an OSError), broken chunks (SyntaxError, struct.error), a
# decompression bomb. Anything else (an ImportError, a CUDA or multiprocessing error, a bug)
# is not the file's fault and must not be reported as a bad image.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error,
                 Image.DecompressionBombError, Image.DecompressionBombWarning)


def decode(path: str | os.PathLike) -> Image.Image:
    """The image at ``path``, fully decoded; raises one of :data:`DECODE_ERRORS` if it cannot be."""
    with warnings.catch_warnings():
        # Between MAX_IMAGE_PIXELS and twice that PIL only warns; refuse those too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = Image.open(path)
        img.load()  # decode now: a truncated file fails here, not lazily later
        return img


def load_image(path: str | os.PathLike, image_size: int, channels: int) -> torch.Tensor:
    """The image at ``path`` through :func:`transform`; raises if it cannot be decoded."""
    with decode(path) as img:
        return transform(img, image_size, channels)


def _reason(path: str | os.PathLike, exc: BaseException) -> str:
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return (
            f"refused as a possible decompression bomb ({exc}); raise "
            f"PIL.Image.MAX_IMAGE_PIXELS (now {Image.MAX_IMAGE_PIXELS}) if the image is genuine"
        )
    try:
        if os.path.getsize(path) == 0:
            return "empty file (0 bytes)"
    except OSError:
        pass
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file that PIL can read (unknown format or corrupt header)"
    if isinstance(exc, OSError) and "truncated" in str(exc).lower():
        return f"truncated image file ({exc})"
    return f"cannot decode: {type(exc).__name__}: {exc}"


def try_load_image(path: str | os.PathLike, image_size: int, channels: int,
                   resize: str = "antialias") -> torch.Tensor | BadImage:
    """:func:`load_image`, or a :class:`BadImage` naming the file and why it could not be decoded.

    Only a failure to decode the file itself is a bad image; an error in the
    transform that follows (or anything else) is raised as itself.
    """
    try:
        img = decode(path)
    except DECODE_ERRORS as exc:
        return BadImage(str(path), _reason(path, exc))
    with img:
        return transform(img, image_size, channels, resize)


class ArrayImages(Dataset):
    """In-memory uint8 images (N x H x W, or N x H x W x 3) with int labels.

    Each item goes through PIL and :func:`transform`, so MNIST and CIFAR-10
    arrays are resized exactly like image files are.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, image_size: int, channels: int,
                 classes: list[str] | None = None):
        check_shape(image_size, channels)
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = np.ascontiguousarray(images, dtype=np.uint8)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.image_size = image_size
        self.channels = channels
        self.classes = list(classes or [])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(self.images[index])  # 2-D -> "L", H x W x 3 -> "RGB"
        return transform(img, self.image_size, self.channels), int(self.labels[index])
