"""The data cache (gankit.data.cache) and its batch source (gankit.data.cached_loader).

Built once and reused (decodes counted), rebuilt when files change, written
atomically (also when two processes race), bad images per data.on_bad_image,
and batches identical to the trainer's DataLoader for every seed, epoch and
position, so a resume mid-epoch continues exactly.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import gankit.data.files as files_module
from gankit.data.cache import CachedDataset, cache_dataset, cache_path, quantise, to_float
from gankit.data.cached_loader import CachedBatches
from gankit.data.cachefile import read_header
from gankit.data.common import collate
from gankit.data.datasets.digits import digits
from gankit.data.fingerprint import source_fingerprint
from gankit.data.datasets.imagefolder import imagefolder
from gankit.core.errors import DataError
from gankit.recipe import validate
from gankit.training.assemble import build_batches, build_training_data
from gankit.data.sampler import ResumableSampler

SIZE, CH = 16, 3
IDENTITY = {"dataset": "imagefolder", "image_size": SIZE, "channels": CH}


def write_images(folder: Path, n: int, seed: int = 0) -> Path:
    """``n`` images of varied sizes and formats in two class folders (labels 0 and 1)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        h, w = int(rng.integers(12, 40)), int(rng.integers(12, 40))
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        sub = folder / ("a" if i % 3 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        ext = ".jpg" if i % 4 == 0 else ".png"
        Image.fromarray(arr).save(sub / f"{i:03d}{ext}")
    return folder


@pytest.fixture
def folder(tmp_path) -> Path:
    return write_images(tmp_path / "images", 23)


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """Paths decoded by ImageFiles (in this process: the tests build with workers=0)."""
    seen: list[str] = []
    real = files_module.try_load_image

    def counting(path, *args):
        seen.append(str(path))
        return real(path, *args)

    monkeypatch.setattr(files_module, "try_load_image", counting)
    return seen


def build(folder: Path, cache_dir: Path, **kw) -> CachedDataset:
    kw.setdefault("log", lambda msg: None)
    return cache_dataset(imagefolder(str(folder), SIZE, CH), IDENTITY, cache_dir, **kw)


def no_temp_files(cache_dir: Path) -> bool:
    return not [p for p in (cache_dir / "data").iterdir() if p.name.endswith(".tmp")]


# -- the cache file --------------------------------------------------------------------
def test_items_are_the_datasets_own_bit_for_bit(folder, tmp_path):
    source = imagefolder(str(folder), SIZE, CH)
    cached = build(folder, tmp_path / "cache")
    assert cached.built and len(cached) == len(source) == 23
    assert cached.images.dtype == torch.uint8 and cached.images.shape == (23, CH, SIZE, SIZE)
    for i in range(len(source)):
        (a, la), (b, lb) = source[i], cached[i]
        assert torch.equal(a, b) and la == lb and type(lb) is int
    assert sorted(set(cached.labels.tolist())) == [0, 1]


def test_float_datasets_are_quantised_like_evaluation(tmp_path):
    source = digits(image_size=SIZE, channels=1)
    cached = cache_dataset(source, {"dataset": "digits"}, tmp_path, log=lambda m: None)
    assert torch.equal(cached.images, quantise(source.tensors[0]))
    assert torch.equal(cached.labels, source.tensors[1])
    image, label = cached[5]
    assert (image - source[5][0]).abs().max() <= 1 / 255 + 1e-6 and label == source[5][1]


def test_conversion_table_matches_arithmetic():
    u = torch.arange(256, dtype=torch.uint8).view(4, 1, 8, 8)
    assert torch.equal(to_float(u, torch.float64), to_float(u).double())
    assert torch.equal(quantise(to_float(u)), u)  # uint8 -> float -> uint8 is the identity


def test_second_call_reuses_the_file_without_decoding(folder, tmp_path, decodes):
    first = build(folder, tmp_path / "cache")
    assert first.built and len(decodes) == 23
    decodes.clear()
    again = build(folder, tmp_path / "cache")
    assert not again.built and decodes == [] and again.path == first.path
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)


def test_changed_source_rebuilds(folder, tmp_path, decodes):
    first = build(folder, tmp_path / "cache")
    before = first.images.clone()
    target = folder / "a" / "001.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(target)
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new mtime even on coarse clocks
    decodes.clear()
    changed = build(folder, tmp_path / "cache")
    assert changed.built and len(decodes) == 23 and changed.path == first.path
    index = [imagefolder(str(folder), SIZE, CH).path(i) for i in range(23)].index(str(target))
    assert changed.images[index].max() == 0 and not torch.equal(changed.images, before)
    Image.fromarray(np.full((20, 20, 3), 7, np.uint8)).save(folder / "a" / "999.png")  # one more file
    assert len(build(folder, tmp_path / "cache")) == 24


def test_identity_and_shape_key_the_file(folder, tmp_path):
    a = cache_path(tmp_path, IDENTITY)
    assert a == cache_path(tmp_path, dict(IDENTITY))
    assert a != cache_path(tmp_path, {**IDENTITY, "image_size": 32})
    assert a != cache_path(tmp_path, {**IDENTITY, "dataset": "celeba"})
    assert source_fingerprint(imagefolder(str(folder), SIZE, CH)) == source_fingerprint(imagefolder(str(folder), 32, CH))


def test_unreadable_or_foreign_file_is_rebuilt(folder, tmp_path):
    path = build(folder, tmp_path / "cache").path
    path.write_bytes(b"not a cache")
    notes: list[str] = []
    again = build(folder, tmp_path / "cache", log=notes.append)
    assert again.built and len(again) == 23 and any("unreadable" in n for n in notes)


def test_interrupted_build_leaves_no_partial_file(folder, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    old = build(folder, cache_dir)
    old_bytes = old.path.read_bytes()
    (folder / "a" / "001.png").unlink()  # the source changes: a rebuild is due
    real = files_module.try_load_image
    calls = []

    def dies_halfway(path, *args):
        calls.append(path)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return real(path, *args)

    monkeypatch.setattr(files_module, "try_load_image", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        build(folder, cache_dir)
    assert old.path.read_bytes() == old_bytes and no_temp_files(cache_dir)  # the old entry, whole
    monkeypatch.setattr(files_module, "try_load_image", real)
    assert len(build(folder, cache_dir)) == 22


def test_unwritable_cache_dir_is_a_data_error(folder, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="(?s)could not write the data cache .*data.cache_dir"):
        build(folder, blocker / "cache")


def test_bad_images_error_or_skip(folder, tmp_path):
    bad = folder / "a" / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match="(?s)bad.png.*data.on_bad_image: skip"):
        build(folder, tmp_path / "cache")
    notes: list[str] = []
    cached = build(folder, tmp_path / "cache", on_bad_image="skip", log=notes.append)
    assert len(cached) == 23 and cached.skipped_count == 1 and cached.skipped[0].path == str(bad)
    assert any("skipped 1 unreadable" in n for n in notes)
    # the same cache under on_bad_image: error names the file it left out
    with pytest.raises(DataError, match="left out 1 unreadable images, e.g. '.*bad.png'"):
        build(folder, tmp_path / "cache")


def test_pickled_dataset_maps_the_file_again(folder, tmp_path):
    cached = build(folder, tmp_path / "cache")
    copy = pickle.loads(pickle.dumps(cached))
    assert len(pickle.dumps(cached)) < 10_000  # the path, not the pixels
    assert torch.equal(copy.images, cached.images)


def test_dataset_without_fingerprint_gets_a_notice(tmp_path):
    class Plain(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.full((1, 4, 4), i / 4), i

    notes: list[str] = []
    cached = cache_dataset(Plain(), {"dataset": "plain"}, tmp_path, log=notes.append)
    assert len(cached) == 4 and any("cache_fingerprint" in n for n in notes)


# -- two processes at once -----------------------------------------------------------
CHILD = r"""
import json, sys, time
from pathlib import Path
import contextlib
import gankit.data.cache as cache
import gankit.data.files as imf
from gankit.data.datasets.imagefolder import imagefolder

folder, cache_dir, me, other, lock = sys.argv[1:]
real = imf.try_load_image
def slow(path, *a):
    time.sleep(0.02)  # a build long enough for the other process to start meanwhile
    return real(path, *a)
imf.try_load_image = slow
if lock == "nolock":  # what happens where file locks are unavailable: both build, the last rename wins
    cache._build_lock = lambda path, log: contextlib.nullcontext()
Path(me).touch()
while not Path(other).exists():  # start together
    time.sleep(0.005)
ds = cache.cache_dataset(imagefolder(folder, 16, 3), {"dataset": "imagefolder", "image_size": 16, "channels": 3},
                         cache_dir, log=lambda m: None)
print(json.dumps({"built": ds.built, "n": len(ds), "sum": int(ds.images.sum())}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("lock", ["lock", "nolock"])
def test_two_processes_racing(folder, tmp_path, lock):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    cache_dir = tmp_path / "cache"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    args = [[sys.executable, str(script), str(folder), str(cache_dir), str(tmp_path / me), str(tmp_path / other), lock]
            for me, other in (("r1", "r2"), ("r2", "r1"))]
    procs = [subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for a in args]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    expected = build(folder, cache_dir)
    assert not expected.built and no_temp_files(cache_dir)
    assert all(r["n"] == 23 and r["sum"] == int(expected.images.sum()) for r in results)
    built = sorted(r["built"] for r in results)
    # With the lock the second run waits and reuses; without it both may build (the last rename
    # wins), unless one finished before the other looked: either way each read a complete file.
    assert built == [False, True] if lock == "lock" else built in ([False, True], [True, True])


# -- batches -------------------------------------------------------------------------
def loader_batches(dataset, bs, sampler, drop_last):
    loader = DataLoader(dataset, batch_size=bs, sampler=sampler, num_workers=0, collate_fn=collate, drop_last=drop_last)
    return list(loader), len(loader)


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("seed,epoch,start", [(0, 0, 0), (3, 1, 10), (3, 4, 5), (7, 2, 20)])
def test_same_batches_as_the_dataloader(folder, tmp_path, drop_last, seed, epoch, start):
    source = imagefolder(str(folder), SIZE, CH)
    cached = build(folder, tmp_path / "cache")
    reference_sampler, sampler = ResumableSampler(23, seed), ResumableSampler(23, seed)
    reference_sampler.set_position(epoch, start)
    expected, expected_len = loader_batches(source, 5, reference_sampler, drop_last)
    batches = CachedBatches(cached, 5, sampler, "cpu", drop_last=drop_last)
    batches.set_position(epoch, start)
    got = list(batches)
    assert len(batches) == expected_len == len(got)
    for (xi, xl, xb), (gi, gl, gb) in zip(expected, got):
        assert torch.equal(xi, gi) and torch.equal(xl, gl) and xb == gb == []


def test_resume_mid_epoch_continues_identically(folder, tmp_path):
    cached = build(folder, tmp_path / "cache")
    whole = [b[0] for b in CachedBatches(cached, 4, _at(ResumableSampler(23, 9), 2, 0))]
    for k in (1, 3, 5):  # stopped after k batches; a new process resumes at (epoch 2, k * batch_size)
        fresh = CachedBatches(build(folder, tmp_path / "cache"), 4, ResumableSampler(23, 9))
        fresh.set_position(2, k * 4)
        rest = [b[0] for b in fresh]
        assert len(rest) == len(whole) - k and all(torch.equal(a, b) for a, b in zip(whole[k:], rest))


def _at(sampler, epoch, start):
    sampler.set_position(epoch, start)
    return sampler


def test_iter_takes_the_position_when_called(folder, tmp_path):
    cached = build(folder, tmp_path / "cache")
    batches = CachedBatches(cached, 5, ResumableSampler(23, 1))
    it = iter(batches)
    batches.set_position(1, 0)  # affects the next iter() only, as a DataLoader would
    assert torch.equal(next(it)[0], next(iter(CachedBatches(cached, 5, ResumableSampler(23, 1))))[0])


def test_resident_dtype_and_memory_format(folder, tmp_path):
    cached = build(folder, tmp_path / "cache")
    plain = list(CachedBatches(cached, 6, ResumableSampler(23, 2)))
    resident = CachedBatches(cached, 6, ResumableSampler(23, 2), resident=True)
    assert resident.resident and resident._images.data_ptr() != cached.images.data_ptr()
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(plain, resident))
    fancy = CachedBatches(cached, 6, ResumableSampler(23, 2), dtype=torch.bfloat16, memory_format=torch.channels_last)
    for (a, _, _), (b, _, _) in zip(plain, fancy):
        assert b.dtype == torch.bfloat16 and b.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(a.to(torch.bfloat16), b)


def test_sampler_must_cover_the_cache(folder, tmp_path):
    with pytest.raises(ValueError, match="sampler covers 22 items but the cache holds 23"):
        CachedBatches(build(folder, tmp_path / "cache"), 4, ResumableSampler(22, 0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("resident", [True, False])
def test_cuda_batches_match_the_cpu(folder, tmp_path, resident):
    cached = build(folder, tmp_path / "cache")
    cpu = list(CachedBatches(cached, 5, _at(ResumableSampler(23, 4), 1, 5)))
    gpu = CachedBatches(cached, 5, _at(ResumableSampler(23, 4), 1, 5), "cuda", resident=resident)
    assert gpu.resident == resident
    for (a, la, _), (b, lb, _) in zip(cpu, gpu):
        assert b.device.type == "cuda" and torch.equal(a, b.cpu()) and torch.equal(la, lb.cpu())


# -- the recipe ----------------------------------------------------------------------
def test_recipe_switch_and_default_folder(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "env-cache"))
    off = validate(tiny)
    assert off.data.cache is False and off.data.cache_dir is None
    assert not isinstance(build_training_data(off), CachedDataset)
    assert isinstance(build_batches(off, build_training_data(off), ResumableSampler(1797, 0), torch.device("cpu")),
                      DataLoader)
    on = validate({**tiny, "data": {**tiny["data"], "cache": True}})
    cached = build_training_data(on, log=lambda m: None)
    assert isinstance(cached, CachedDataset) and cached.path.is_relative_to(tmp_path / "env-cache")
    assert read_header(cached.path)["count"] == 1797
    batches = build_batches(on, cached, ResumableSampler(len(cached), on.seed), torch.device("cpu"))
    assert isinstance(batches, CachedBatches) and batches.batch_size == 16
    there = validate({**tiny, "data": {**tiny["data"], "cache": True, "cache_dir": str(tmp_path / "mine")}})
    assert build_training_data(there, log=lambda m: None).path.is_relative_to(tmp_path / "mine")


def test_workers_build_the_same_file(folder, tmp_path):
    one = build(folder, tmp_path / "c0")
    two = build(folder, tmp_path / "c2", workers=2)
    assert torch.equal(one.images, two.images) and torch.equal(one.labels, two.labels)


def test_data_cache_trains_identically(folder, tiny, tmp_path):
    """``data.cache: true`` ends with the same weights as the DataLoader path, bit for bit."""
    from gankit.rundir.checkpoint import load_checkpoint
    from gankit.training.trainer import train

    data = {"name": "imagefolder", "root": str(folder), "image_size": 16, "channels": 3, "batch_size": 5,
            "workers": 0, "cache_dir": str(tmp_path / "cache")}
    runs = []
    for cached in (False, True):
        recipe = {**tiny, "data": {**data, "cache": cached}, "train": {**tiny["train"], "steps": 7},
                  "out_dir": str(tmp_path / f"runs{int(cached)}")}
        runs.append(train(validate(recipe)))
    assert list((tmp_path / "cache").rglob("*.u8"))  # the cached run really used the cache
    a, b = (load_checkpoint(r) for r in runs)
    assert a["step"] == b["step"] == 7 and a["epoch"] == b["epoch"] == 1
    for part in ("generator", "discriminator"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part])


def test_global_random_stream_untouched(folder, tmp_path):
    """The trainer builds its data after seeding: building, loading and batching must not draw from it."""
    before = torch.get_rng_state()
    cached = build(folder, tmp_path / "cache", workers=1)
    build(folder, tmp_path / "cache")
    list(CachedBatches(cached, 4, ResumableSampler(23, 0)))
    assert torch.equal(torch.get_rng_state(), before)
