"""Fast data: a dataset decoded once into a memory-mapped uint8 file, reused by later runs.

    cached = cache_dataset(dataset, identity, cache_dir, on_bad_image="skip", workers=2)
    cached.images        # uint8 N x C x H x W, memory-mapped
    cached[i]            # (float image in [-1, 1], int label), like every dataset

Each image goes through the dataset's own ``__getitem__`` once (its transform
is not duplicated here) and is stored as ``round((x + 1) * 127.5)``. For the
built-in file and array datasets this is lossless: their transform ends in
ToTensor + Normalize(0.5, 0.5), i.e. ``(u / 255 - 0.5) / 0.5`` of a uint8
``u``, and :func:`to_float` computes exactly that again, bit for bit. Datasets
that resize in float (``digits``) are quantised to 8 bits, as evaluation does.

An entry is found by ``identity`` (dataset name and arguments, image size,
channels) plus the versions of what decodes and resizes (torch, torchvision,
Pillow); it is rebuilt when the source's fingerprint changes (file names,
sizes and modification times of an image folder; the bytes of an in-memory
array). The file is written atomically (see :mod:`gankit.data.cachefile`); a
lock makes a second run wait for the first one's build instead of repeating it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gankit.data.cachefile import CacheWriter, open_arrays, read_header
from gankit.data.workers import loader_options
from gankit.data.common import BadImage, collate
from gankit.data.fingerprint import source_fingerprint
from gankit.core.errors import DataError

Log = Callable[[str], None]
_KEEP_SKIPPED = 20  # unreadable files named in the header (all are counted)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- uint8 <-> float -----------------------------------------------------------------
def quantise(images: Tensor) -> Tensor:
    """Float images in [-1, 1] -> uint8 ``round((x + 1) * 127.5)`` (half to even, as evaluation does)."""
    return ((images.float() + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


_LUT = torch.arange(256, dtype=torch.uint8).float().div(255).sub(0.5).div(0.5)  # ToTensor + Normalize(0.5, 0.5)
_LUTS: dict[tuple[torch.device, torch.dtype], Tensor] = {}


def to_float(images: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """uint8 images -> ``dtype`` in [-1, 1], exactly the values ToTensor + Normalize(0.5, 0.5) give.

    On the CPU in float32 by the same arithmetic; elsewhere through a 256-entry
    table (a CUDA division by a scalar multiplies by its reciprocal, which can
    differ in the last bit).
    """
    if images.device.type == "cpu" and dtype == torch.float32:
        return images.float().div_(255).sub_(0.5).div_(0.5)
    key = (images.device, dtype)
    lut = _LUTS.get(key)
    if lut is None:  # once per device and dtype, not a host-to-device copy per batch
        lut = _LUTS[key] = _LUT.to(device=images.device, dtype=dtype)
    return lut.index_select(0, images.reshape(-1).int()).view(images.shape)


def _versions() -> dict[str, str]:
    """What decodes and resizes: a new version may give other pixels, so it keys the cache."""
    import PIL
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "pillow": PIL.__version__}


def _key_text(identity: dict[str, Any]) -> str:
    return json.dumps({"identity": identity, "versions": _versions()}, sort_keys=True, default=str)


def cache_path(cache_dir: Path, identity: dict[str, Any]) -> Path:
    """Where the entry for ``identity`` lives (the same file, rebuilt, when only the source changes)."""
    digest = hashlib.sha256(_key_text(identity).encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(identity.get("dataset", "data")))[:40] or "data"
    return Path(cache_dir).expanduser() / "data" / f"{name}-{digest}.u8"


# -- the cached dataset ----------------------------------------------------------------
class CachedDataset(Dataset):
    """A cache file's images and labels; items ``(float image in [-1, 1], int label)``.

    ``images`` (uint8 N x C x H x W, memory-mapped) and ``labels`` (int64 N)
    are there for batch-at-once access (:class:`gankit.data.cached_loader.CachedBatches`).
    ``built`` says whether this call wrote the file; ``skipped_count`` and
    ``skipped`` (the first few) are the unreadable images left out.
    """

    def __init__(self, path: Path, header: dict[str, Any], built: bool = False):
        self.path = Path(path)
        self.header = header
        self.images, self.labels = open_arrays(self.path, header)
        self.built = built
        self.skipped_count = int(header.get("skipped_count", 0))
        self.skipped = [BadImage(p, r) for p, r in header.get("skipped", [])]

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return to_float(self.images[index]), int(self.labels[index])

    # A worker process (spawn, forkserver) maps the file again instead of receiving a copy of it.
    def __getstate__(self):
        return {"path": self.path, "header": self.header, "built": self.built}

    def __setstate__(self, state):
        if read_header(state["path"]) != state["header"]:
            raise DataError(f"the data cache {state['path']} was rebuilt by another run while this one used it; "
                            "restart this run")
        self.__init__(state["path"], state["header"], state["built"])


def _load(path: Path, key: str, fingerprint: str | None, log: Log) -> CachedDataset | None:
    if not path.is_file():
        return None
    try:
        header = read_header(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log(f"data cache {path} is unreadable ({exc}); rebuilding it")
        return None
    if header.get("key") != key:
        log(f"data cache {path} was written for other settings; rebuilding it")
        return None
    if header.get("fingerprint") != fingerprint:
        log(f"data cache {path}: the dataset's files changed since it was built; rebuilding it")
        return None
    return CachedDataset(path, header)


@contextlib.contextmanager
def _build_lock(path: Path, log: Log):
    """An exclusive lock beside ``path`` so a racing run waits rather than decoding everything twice.

    Only an optimisation: correctness comes from the atomic rename, so where
    locks are unavailable (Windows, some network file systems) both build.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path.with_name(path.name + ".lock"), "a+b")
    except OSError:  # an unwritable folder: the writer then says so, naming it
        yield
        return
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another process that is building the data cache {path}")
            fcntl.flock(f, fcntl.LOCK_EX)
        except OSError:
            yield  # the file system refuses locks: build without
            return
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _progress(total: int, enabled: bool | None, what: str):
    from tqdm import tqdm

    # disable=None: tqdm shows the bar only on a terminal
    return tqdm(total=total, unit="img", desc=f"caching {what}", disable=None if enabled is None else not enabled,
                file=sys.stderr, mininterval=1.0, leave=False)


def _bad_error(bad: BadImage) -> DataError:
    return DataError(
        f"cannot read image '{bad.path}': {bad.reason}\n"
        "    fix or remove the file, or set data.on_bad_image: skip to skip and count unreadable images"
    )


def _write_error(path: Path, exc: OSError) -> DataError:
    return DataError(f"could not write the data cache {path} ({exc})\n"
                     "    free some space, set data.cache_dir to another folder, or set data.cache: false")


def _write(dataset: Dataset, path: Path, header: dict[str, Any], on_bad_image: str, workers: int,
           batch_size: int, progress: bool | None, what: str) -> dict[str, Any]:
    # A private generator: iterating a DataLoader draws a seed, and the build must not move the
    # training's global random stream (the trainer builds its data after seeding it).
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate,
                        generator=torch.Generator().manual_seed(0), **loader_options(workers, persistent=False))
    try:
        writer = CacheWriter(path)
    except OSError as exc:
        raise _write_error(path, exc) from None
    skipped: list[BadImage] = []
    count = 0
    try:
        with _progress(len(dataset), progress, what) as bar:
            for images, labels, bad in loader:
                if bad and on_bad_image == "error":
                    raise _bad_error(bad[0])
                skipped += bad
                if images is not None:
                    if not torch.isfinite(images).all():
                        raise DataError(f"{what}: the dataset gave NaN or infinite pixel values; it cannot be cached")
                    if writer.shape is not None and tuple(images.shape[1:]) != writer.shape:
                        raise DataError(f"{what}: images of shapes {writer.shape} and {tuple(images.shape[1:])}; "
                                        "a cache needs one shape (set data.cache: false)")
                    writer.add(quantise(images), torch.as_tensor(labels).view(-1))
                    count += images.shape[0]
                bar.update(len(bad) + (0 if images is None else images.shape[0]))
        if count == 0:
            raise DataError(f"{what}: none of its {len(dataset)} images could be read; nothing to cache")
        header = {**header, "skipped_count": len(skipped),
                  "skipped": [[b.path, b.reason] for b in skipped[:_KEEP_SKIPPED]]}
        writer.commit(header)
    except OSError as exc:
        raise _write_error(path, exc) from None
    finally:
        writer.discard()  # after commit: nothing left to remove
    return header


def cache_dataset(dataset: Dataset, identity: dict[str, Any], cache_dir: str | Path, *,
                  on_bad_image: str = "error", workers: int = 0, batch_size: int = 256,
                  progress: bool | None = None, log: Log | None = None) -> CachedDataset:
    """``dataset`` as a :class:`CachedDataset`, decoding it (once, with ``workers`` processes) when needed.

    ``identity``: JSON-able description of what the dataset's items depend on
    besides its source (name, arguments, image size, channels). Unreadable
    images (``BadImage`` items) stop the build with a :class:`DataError` naming
    the file (``on_bad_image="error"``) or are left out and counted (``"skip"``);
    a cache with skipped images is refused under ``"error"``. ``progress``: a
    tqdm bar on stderr (None: only on a terminal). ``log``: one-line notices
    (default: stderr).
    """
    log = log or _stderr
    what = str(identity.get("dataset", "dataset"))
    path = cache_path(Path(cache_dir), identity)
    fingerprint = source_fingerprint(dataset)
    if fingerprint is None:
        log(f"data cache: gankit cannot tell when {what}'s source changes (its dataset class has no "
            f"cache_fingerprint()); delete {path} after changing it")
    key = _key_text(identity)
    cached = _load(path, key, fingerprint, log)
    if cached is None:
        with _build_lock(path, log):
            cached = _load(path, key, fingerprint, lambda _msg: None)  # a racing run may have built it meanwhile
            if cached is None:
                log(f"data cache: decoding {len(dataset)} images of {what} once into {path}")
                header = _write(dataset, path, {"key": key, "fingerprint": fingerprint}, on_bad_image,
                                workers, batch_size, progress, what)
                cached = CachedDataset(path, read_header(path), built=True)
                if header["skipped_count"]:
                    first = cached.skipped[0]
                    log(f"data cache: skipped {header['skipped_count']} unreadable images "
                        f"(first: '{first.path}': {first.reason})")
    if cached.skipped_count and on_bad_image == "error":
        raise DataError(
            f"the data cache {path} was built with data.on_bad_image: skip and left out {cached.skipped_count} "
            f"unreadable images, e.g. '{cached.skipped[0].path}': {cached.skipped[0].reason}\n"
            "    fix or remove the files (the cache then rebuilds), or set data.on_bad_image: skip"
        )
    return cached
