"""Hostile data, end to end: a folder of damaged, odd and dangerous files, trained on.

tests/test_datasets.py checks each file kind against the dataset; here a run
meets all of them at once and must convert, skip and count, or stop naming
the file, as ``data.on_bad_image`` says.
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from gankit.core.errors import DataError
from gankit.rundir.metrics import read_metrics
from gankit.recipe import validate
from gankit.rundir.checkpoint import load_checkpoint
from gankit.training.trainer import train
from helpers import gankit


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A few hundred bytes that claim 400 million pixels (PIL refuses on open, before decoding)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


def hostile_folder(root) -> tuple[set[str], set[str]]:
    """Write the folder; returns (files that must train, files that must be skipped)."""
    root.mkdir()
    rng = np.random.default_rng(0)
    good = set()
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), np.uint8)).save(root / f"rgb_{i}.png")
        good.add(f"rgb_{i}.png")
    Image.fromarray(rng.integers(0, 65535, (20, 20), np.uint16)).save(root / "deep_16bit.png")
    Image.new("CMYK", (20, 20), (10, 200, 30, 5)).save(root / "print_cmyk.jpg")
    Image.new("LA", (20, 20), (100, 128)).save(root / "grey_alpha.png")
    Image.new("P", (20, 20), 3).save(root / "palette.gif")
    good |= {"deep_16bit.png", "print_cmyk.jpg", "grey_alpha.png", "palette.gif"}
    jpeg = (root / "print_cmyk.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    png = (root / "rgb_0.png").read_bytes()
    (root / "truncated.png").write_bytes(png[: len(png) // 2])
    (root / "zero_bytes.png").write_bytes(b"")
    (root / "not_an_image.jpg").write_text("Name,Age\nAda,36\n")
    (root / "bomb.png").write_bytes(bomb_png())
    bad = {"truncated.jpg", "truncated.png", "zero_bytes.png", "not_an_image.jpg", "bomb.png"}
    try:
        os.symlink(root, root / "loop")  # a folder that contains itself
    except OSError:
        pass
    return good, bad


@pytest.fixture
def hostile(tiny, tmp_path):
    good, bad = hostile_folder(tmp_path / "imgs")
    n = len(good) + len(bad)
    tiny["data"] = {"name": "imagefolder", "root": str(tmp_path / "imgs"), "image_size": 16, "channels": 3,
                    "batch_size": 4, "workers": 0}
    tiny["train"].update(steps=-(-n // 4), sample_every=None, checkpoint_every=None)  # one epoch
    return tiny, good, bad


def test_skip_converts_odd_images_and_skips_and_counts_bad_ones(hostile, capsys):
    recipe, good, bad = hostile
    recipe["data"]["on_bad_image"] = "skip"
    run_dir = train(validate(recipe))
    events = [r for r in read_metrics(run_dir) if r.get("event") == "skipped_images"]
    skipped = {os.path.basename(f) for e in events for f in e["files"]}
    assert skipped == bad, skipped
    assert events[-1]["total"] == len(bad) == load_checkpoint(run_dir)["skipped_images"]
    reasons = "\n".join(f"{e}" for e in events)
    assert "loop" not in reasons  # the symlink loop was walked once, not followed forever
    assert f"skipped {len(bad)} unreadable images" in capsys.readouterr().err
    assert read_metrics(run_dir)[-1]["status"] == "finished"


def test_error_stops_naming_the_file(hostile):
    recipe, good, bad = hostile
    with pytest.raises(DataError) as err:
        train(validate(recipe))
    text = str(err.value)
    assert text.startswith("cannot read image '") and any(name in text for name in bad), text
    assert "data.on_bad_image: skip" in text


@pytest.mark.parametrize("name, reason", [
    ("truncated.jpg", "truncated"), ("zero_bytes.png", "empty file (0 bytes)"),
    ("not_an_image.jpg", "not an image file"), ("bomb.png", "decompression bomb"),
])
def test_each_bad_file_is_named_with_its_reason_through_the_command_line(tiny, tmp_path, write_recipe, name, reason):
    good, _ = hostile_folder(tmp_path / "all")
    folder = tmp_path / "one"
    folder.mkdir()
    for keep in sorted(good)[:3] + [name]:
        os.link(tmp_path / "all" / keep, folder / keep)
    tiny["data"] = {"name": "imagefolder", "root": str(folder), "image_size": 16, "channels": 3,
                    "batch_size": 4, "workers": 0}
    tiny["train"].update(steps=1, sample_every=None)
    code, _, err = gankit("run", write_recipe(tiny))
    assert code == 2 and err.startswith(f"error: cannot read image '{folder / name}': ") and reason in err, err
