"""The built-in datasets: real shared data, mode conversions, layout errors, bad files."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.data import BadImage
from gankit.data.datasets.imagefolder import imagefolder
from gankit.data.files import find_images
from gankit.data.datasets.mnist import mnist
from gankit.data.transforms import load_image, try_load_image
from gankit.core.errors import DataError
from gankit.recipe.components import check_arguments

# CI clones the repo next to a copy of shared/; the data is never copied into the repo.
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BUILTIN = ("celeba", "cifar10", "digits", "imagefolder", "mnist")


def shared(sub: str) -> Path:
    path = SHARED / sub
    if not path.exists():
        pytest.skip(f"shared test data {path} is absent (expected next to the repo as ../shared/data)")
    return path


def check_item(item, size: int, channels: int) -> int:
    assert not isinstance(item, BadImage), item
    image, label = item
    assert image.dtype == torch.float32
    assert image.shape == (channels, size, size)
    assert image.min() >= -1.0 and image.max() <= 1.0
    assert type(label) is int
    return label


# -- the real shared data ------------------------------------------------------------
REAL = {  # name -> (kwargs from the shared folder, label of the first item, of the last)
    "imagefolder-celeba": ("imagefolder", lambda s: {"root": str(s / "celeba_sample")}, 0, 0),
    "celeba": ("celeba", lambda s: {"root": str(s / "celeba_sample")}, -1, -1),
    "mnist-test": ("mnist", lambda s: {"root": str(s), "split": "test"}, 7, 6),
    "cifar10-folders": ("cifar10", lambda s: {"root": str(s / "cifar10_test"), "split": "test"}, 0, 9),
}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("case", sorted(REAL))
def test_real_data(case, channels):
    name, kwargs, first, last = REAL[case]
    shared("")
    ds = gankit.registry("datasets").build(name, image_size=16, channels=channels, **kwargs(SHARED))
    assert len(ds) == 10_000
    assert check_item(ds[0], 16, channels) == first
    assert check_item(ds[len(ds) - 1], 16, channels) == last


def test_digits_read_without_scikit_learn_are_scikit_learns():
    from sklearn.datasets import load_digits

    from gankit.data.datasets.digits import _load

    images, labels = _load()
    bunch = load_digits()
    assert np.array_equal(images, bunch.images) and np.array_equal(labels, bunch.target)


def test_tutorial_transform_matches_torchvision():
    import torchvision.transforms as T

    path = shared("celeba_sample") / "img_align_celeba" / "000001.jpg"
    tutorial = T.Compose([T.Resize(32), T.CenterCrop(32), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    expected = tutorial(Image.open(path).convert("RGB"))
    assert torch.equal(load_image(path, 32, 3), expected)


def test_mnist_pixels_and_labels_match_the_idx_file():
    raw = shared("MNIST/raw")
    with gzip.open(raw / "t10k-images-idx3-ubyte.gz") as f:
        pixels = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    ds = mnist(str(SHARED), split="test", image_size=28, channels=1)
    image, label = ds[123]
    assert torch.equal(((image + 1) / 2 * 255).round().to(torch.uint8)[0], torch.from_numpy(pixels[123].copy()))
    assert sorted(set(ds.labels.tolist())) == list(range(10))


def test_mnist_train_split_missing_in_shared_data():
    shared("MNIST/raw")
    with pytest.raises(DataError, match="train-images-idx3-ubyte") as err:
        mnist(str(SHARED), split="train")
    assert str(SHARED) in str(err.value) and "download" in str(err.value)
    assert "data.split: test" in str(err.value)  # the test split is there


# -- PIL modes -> L / RGB ------------------------------------------------------------
def _palette_transparent():
    img = Image.new("P", (8, 8), 0)
    img.putpalette([255, 255, 255] + [255, 0, 0] * 255)  # index 0: white, but transparent
    img.info["transparency"] = 0
    return img


MODES = {  # name -> (make the image, file suffix, the RGB it must come out as)
    "L": (lambda: Image.new("L", (8, 8), 200), ".png", (200, 200, 200)),
    "1": (lambda: Image.new("1", (8, 8), 1), ".png", (255, 255, 255)),
    "P-transparent": (_palette_transparent, ".png", (0, 0, 0)),  # composited on black, not white
    "RGBA-opaque": (lambda: Image.new("RGBA", (8, 8), (255, 0, 0, 255)), ".png", (255, 0, 0)),
    "RGBA-clear": (lambda: Image.new("RGBA", (8, 8), (255, 255, 255, 0)), ".png", (0, 0, 0)),
    "LA": (lambda: Image.new("LA", (8, 8), (200, 255)), ".png", (200, 200, 200)),
    "CMYK": (lambda: Image.new("CMYK", (8, 8), (0, 255, 255, 0)), ".tif", (255, 0, 0)),
    # 16-bit 32896 = 128 * 257 must become 128, not clip to white.
    "I;16": (lambda: Image.fromarray(np.full((8, 8), 32896, np.uint16)), ".png", (128, 128, 128)),
    "I": (lambda: Image.fromarray(np.full((8, 8), 40000, np.int32)), ".tif", (156, 156, 156)),
    "F": (lambda: Image.fromarray(np.full((8, 8), 0.25, np.float32)), ".tif", (64, 64, 64)),
}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_modes_convert(tmp_path, mode, channels):
    make, suffix, rgb = MODES[mode]
    path = tmp_path / f"img{suffix}"
    make().save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. PIL's "palette images with transparency" warning
        image = load_image(path, 8, channels)
    want = rgb if channels == 3 else (Image.new("RGB", (1, 1), rgb).convert("L").getpixel((0, 0)),)
    want = torch.tensor(want, dtype=torch.float32).div(255).mul(2).sub(1).view(-1, 1, 1).expand(channels, 8, 8)
    assert image.shape == (channels, 8, 8)
    assert torch.allclose(image, want, atol=1e-6)


def test_16bit_gradient_uses_full_range(tmp_path):
    Image.fromarray(np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)).save(tmp_path / "g.png")
    image = load_image(tmp_path / "g.png", 8, 1)
    assert image.min() == -1.0 and image.max() == 1.0
    assert (image < 0.99).float().mean() > 0.9  # PIL's own convert would make almost all of it white


# -- bad files ----------------------------------------------------------------------
def _bad_files(root: Path) -> dict[str, str]:
    """Write bad files into ``root``; name -> a word their BadImage reason must contain."""
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(root / "good.jpg")
    data = (root / "good.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "empty.png").write_bytes(b"")
    (root / "text.jpg").write_text("this is not a JPEG\n")
    return {"truncated.jpg": "truncated", "empty.png": "empty", "text.jpg": "not an image"}


def test_bad_images_become_badimage(tmp_path):
    expected = _bad_files(tmp_path)
    ds = imagefolder(str(tmp_path), image_size=16, channels=3)
    seen = {}
    for i in range(len(ds)):
        item = ds[i]
        if isinstance(item, BadImage):
            seen[Path(item.path).name] = item.reason
            assert Path(item.path).parent == tmp_path
        else:
            check_item(item, 16, 3)
    assert set(seen) == set(expected)
    for name, word in expected.items():
        assert word in seen[name], (name, seen[name])


@pytest.mark.parametrize("pixels", [12, 16], ids=["over-limit-warning", "over-twice-limit-error"])
def test_decompression_bomb_is_badimage(tmp_path, monkeypatch, pixels):
    Image.new("RGB", (pixels, pixels)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    item = try_load_image(tmp_path / "big.png", 8, 3)
    assert isinstance(item, BadImage) and "decompression bomb" in item.reason


def test_build_lists_files_without_opening_them(tmp_path, monkeypatch):
    for i in range(3):
        Image.new("RGB", (4, 4)).save(tmp_path / f"{i}.png")
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("opened an image at build time"))
    assert len(imagefolder(str(tmp_path), image_size=8)) == 3


# -- folder walking -------------------------------------------------------------------
def test_imagefolder_recursive_sorted_labelled(tmp_path):
    for rel in ["b/x.PNG", "a/sub/y.JpEg", "a/w.gif", "z.bmp", ".hidden/q.png", "a/._mac.jpg"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(tmp_path / rel, format="PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    ds = imagefolder(str(tmp_path), image_size=8, channels=1)
    assert [os.path.relpath(ds.path(i), tmp_path) for i in range(len(ds))] == [
        os.path.join("a", "sub", "y.JpEg"), os.path.join("a", "w.gif"), os.path.join("b", "x.PNG"), "z.bmp"
    ]
    assert [ds[i][1] for i in range(len(ds))] == [0, 0, 1, -1]
    assert ds.classes == ["a", "b"]


def test_symlink_loops_end(tmp_path):
    (tmp_path / "cls").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "cls" / "a.png")
    try:
        os.symlink(tmp_path, tmp_path / "cls" / "up")  # back to an ancestor: a loop
        os.symlink(".", tmp_path / "self")
        os.symlink("selfloop", tmp_path / "selfloop")  # a link to itself (ELOOP)
        os.symlink(tmp_path / "cls", tmp_path / "alias")  # a plain alias, not a loop: followed
        os.symlink(tmp_path / "missing", tmp_path / "dangling")
    except (OSError, NotImplementedError) as exc:
        pytest.skip(f"cannot make symlinks here: {exc}")
    result = []
    walker = threading.Thread(target=lambda: result.append(find_images(str(tmp_path))), daemon=True)
    walker.start()
    walker.join(timeout=30)
    assert not walker.is_alive(), "find_images hangs on a symlink loop"
    assert result[0][0] == [os.path.join("alias", "a.png"), os.path.join("cls", "a.png")]


# -- layout errors --------------------------------------------------------------------
def _images_directly_in(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4)).save(root / "000001.jpg")
    return root


LAYOUTS = {  # case -> (dataset, make the root from tmp_path, words the message must contain)
    "imagefolder-missing": ("imagefolder", lambda t: t / "nope", ["does not exist", "expected"]),
    "imagefolder-empty": ("imagefolder", lambda t: t, ["no image files", "no files in it"]),
    "imagefolder-only-text": (
        "imagefolder", lambda t: (t / "a.txt").write_text("x") and t, ["no image files", "1 .txt"]),
    "imagefolder-a-file": ("imagefolder", lambda t: (t / "a.txt").write_text("x") and t / "a.txt", ["not a folder"]),
    "celeba-missing": ("celeba", lambda t: t / "celeba", ["does not exist", "img_align_celeba.zip"]),
    "celeba-flat": ("celeba", lambda t: _images_directly_in(t / "celeba"), ["directly", "imagefolder"]),
    "celeba-zipped": ("celeba", lambda t: (t / "img_align_celeba.zip").write_bytes(b"PK") and t, ["unzip"]),
    "celeba-empty": ("celeba", lambda t: (t / "img_align_celeba").mkdir() or t, ["no image files", "000001.jpg"]),
    "mnist-missing": ("mnist", lambda t: t, ["train-images-idx3-ubyte", "MNIST"]),
    "cifar10-missing": ("cifar10", lambda t: t / "nope", ["does not exist", "cifar-10-batches-py"]),
    "cifar10-flat": ("cifar10", lambda t: _images_directly_in(t), ["class folders"]),
    "cifar10-stray-class": (
        "cifar10", lambda t: [_images_directly_in(t / c) for c in ("cat", "dragon")] and t, ["dragon", "imagefolder"]),
    "cifar10-broken-batches": ("cifar10", lambda t: (t / "cifar-10-batches-py").mkdir() or t, ["cifar-10-batches-py"]),
}


@pytest.mark.parametrize("case", sorted(LAYOUTS))
def test_layout_errors_name_the_path(tmp_path, case):
    name, make, words = LAYOUTS[case]
    root = make(tmp_path)
    with pytest.raises(DataError) as err:
        gankit.registry("datasets").build(name, root=str(root), image_size=8, channels=3)
    message = str(err.value)
    assert str(root) in message, message
    for word in words:
        assert word in message, (word, message)


# -- MNIST's IDX files ----------------------------------------------------------------
def _write_idx(folder: Path, prefix: str, n: int = 3, *, magic: int = 0x803, gz: bool = False, cut: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    images = struct.pack(">IIII", magic, n, 28, 28) + bytes(range(256)) * 3 * n + bytes(16 * n)
    labels = struct.pack(">II", 0x801, n) + bytes(range(n))
    opener = gzip.open if gz else open
    suffix = ".gz" if gz else ""
    with opener(folder / f"{prefix}-images-idx3-ubyte{suffix}", "wb") as f:
        f.write(images[: len(images) - cut])
    with opener(folder / f"{prefix}-labels-idx1-ubyte{suffix}", "wb") as f:
        f.write(labels)
    return folder / f"{prefix}-images-idx3-ubyte{suffix}"


@pytest.mark.parametrize("where", ["", "raw", "MNIST/raw"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_mnist_reads_idx_files(tmp_path, where, gz):
    _write_idx(tmp_path / where, "train", gz=gz)
    ds = mnist(str(tmp_path), split="train", image_size=16, channels=1)
    assert len(ds) == 3 and [ds[i][1] for i in range(3)] == [0, 1, 2]
    check_item(ds[2], 16, 1)


@pytest.mark.parametrize(
    "kwargs, words", [({"magic": 0x12345678}, "magic number 0x12345678"), ({"cut": 100}, "truncated")],
    ids=["bad-magic", "truncated"])
def test_mnist_bad_idx(tmp_path, kwargs, words):
    path = _write_idx(tmp_path, "t10k", **kwargs)
    with pytest.raises(DataError, match=words) as err:
        mnist(str(tmp_path), split="test")
    assert str(path) in str(err.value)


# -- registry, recipe keys, pickling ------------------------------------------------------
def _small_data(tmp_path: Path) -> dict[str, dict]:
    """Tiny data for every built-in dataset that needs files: name -> kwargs."""
    for c in ("cat", "dog"):
        _images_directly_in(tmp_path / "cifar" / c)
    _images_directly_in(tmp_path / "celeba" / "img_align_celeba")
    _write_idx(tmp_path / "mnist" / "MNIST" / "raw", "train")
    return {
        "imagefolder": {"root": str(tmp_path / "celeba")},
        "celeba": {"root": str(tmp_path / "celeba")},
        "mnist": {"root": str(tmp_path / "mnist")},
        "cifar10": {"root": str(tmp_path / "cifar")},
    }


def test_the_built_in_datasets_are_registered():
    assert set(BUILTIN) <= set(gankit.registry("datasets").list())


@pytest.mark.parametrize("name", gankit.registry("datasets").list())
@pytest.mark.parametrize("channels", [1, 3])
def test_every_registered_dataset_builds_and_travels_to_workers(tmp_path, name, channels):
    """Each dataset (the built-ins on small files made here; another on its defaults) gives images in [-1, 1]."""
    datasets = gankit.registry("datasets")
    ds = datasets.build(name, image_size=16, channels=channels, **_small_data(tmp_path).get(name, {}))
    assert len(ds) > 0
    for i in sorted({0, len(ds) - 1}):
        check_item(ds[i], 16, channels)
    copy = pickle.loads(pickle.dumps(ds))  # DataLoader workers get a pickled copy
    assert len(copy) == len(ds) and torch.equal(copy[0][0], ds[0][0]), name


@pytest.mark.parametrize("name", ["celeba", "cifar10", "mnist"])
def test_recipe_keys_check_against_the_signature(name):
    builder = gankit.registry("datasets").get(name)
    args = {"root": "somewhere", "split": "test", "download": "false"}
    if name == "celeba":
        del args["split"]
    problems, coerced = check_arguments("data", name, builder, args, injected=("image_size", "channels"))
    assert problems == [] and coerced["download"] is False
    if name != "celeba":
        problems, _ = check_arguments("data", name, builder, {"split": "val"}, injected=("image_size", "channels"))
        assert len(problems) == 1 and "data.split" in problems[0]


# -- download: true (torchvision's downloaders faked: nothing is fetched in tests) ------
class _FakeCelebA:
    def __init__(self, root, split, download):
        _images_directly_in(Path(root) / "celeba" / "img_align_celeba")  # where torchvision unzips


class _FakeMNIST:
    def __init__(self, root, train, download):
        _write_idx(Path(root) / "MNIST" / "raw", "train" if train else "t10k", gz=True)


class _FakeCIFAR10:
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def __init__(self, root, train, download):
        assert download
        self.data = np.zeros((2, 32, 32, 3), np.uint8)
        self.targets = [3, 5]


class _Offline:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("no network")


@pytest.mark.parametrize("name, fake, label", [
    ("celeba", ("CelebA", _FakeCelebA), -1), ("mnist", ("MNIST", _FakeMNIST), 0),
    ("cifar10", ("CIFAR10", _FakeCIFAR10), 3)])
def test_download_when_missing(tmp_path, monkeypatch, name, fake, label):
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, fake[0], fake[1])
    ds = gankit.registry("datasets").build(name, root=str(tmp_path), download=True, image_size=8, channels=3)
    assert check_item(ds[0], 8, 3) == label
    monkeypatch.setattr(torchvision.datasets, fake[0], _Offline)
    with pytest.raises(DataError, match="no network") as err:
        gankit.registry("datasets").build(name, root=str(tmp_path / "new"), download=True)
    assert str(tmp_path / "new") in str(err.value)
