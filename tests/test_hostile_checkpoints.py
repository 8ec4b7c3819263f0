"""Hostile checkpoints: code-running pickles, damaged files, newer formats, another recipe's weights."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess

import pytest
import torch

from gankit.core.errors import CheckpointError
from gankit.recipe import validate
from gankit.rundir import checkpoint as ckpt_io
from gankit.rundir.checkpoint import load_checkpoint
from gankit.training.trainer import Trainer, train
from gankit.training.state import prepare_resume
from helpers import REPO, gankit, run_cli


class Payload:
    """Unpickling this runs ``touch MARKER``: what a malicious .pt file does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (subprocess.call, (["touch", self.marker],))


def evil_files(tmp_path, marker) -> dict[str, object]:
    """Checkpoints that would create ``marker`` if unpickled with weights_only=False."""
    files = {}
    files["zip.pt"] = lambda f: torch.save({"format": 1, "recipe": Payload(marker)}, f)
    files["legacy.pt"] = lambda f: f.write(pickle.dumps({"format": 1, "generator": Payload(marker)}, protocol=2))

    def wrapped(f):  # the format-2 wrapper, its checksum right, around an evil payload
        inner = io.BytesIO()
        torch.save({"format": 2, "recipe": Payload(marker)}, inner)
        data = inner.getvalue()
        torch.save({"format": 2, "gankit_version": "0.1.0", "sha256": hashlib.sha256(data).hexdigest(),
                    "payload": torch.frombuffer(bytearray(data), dtype=torch.uint8)}, f)

    files["wrapped.pt"] = wrapped
    paths = {}
    for name, write in files.items():
        path = tmp_path / name
        with open(path, "wb") as f:
            write(f)
        paths[name] = path
    return paths


@pytest.mark.slow
def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    for name, path in evil_files(tmp_path, marker).items():
        with pytest.raises(CheckpointError, match="refused: it holds objects that would run code when loaded") as err:
            load_checkpoint(path)
        assert str(path) in str(err.value) and "nothing in it was run" in str(err.value)
        assert not marker.exists(), name
    result = run_cli("sample", str(tmp_path / "zip.pt"), "--out", str(tmp_path / "imgs"))  # the real command line
    assert result.returncode == 2 and "refused" in result.stderr and "Traceback" not in result.stderr
    code, _, err = gankit("run", "--resume", tmp_path / "wrapped.pt")
    assert code == 2 and "refused" in err
    assert not marker.exists()
    # The payload is real: unpickled the unsafe way, it does create the file.
    torch.load(tmp_path / "zip.pt", weights_only=False)  # deliberately unsafe, and only here
    assert marker.exists()


@pytest.fixture
def run_dir(tiny):
    tiny["train"].update(steps=4, checkpoint_every=1)
    return train(validate(tiny))


def test_checkpoints_carry_a_format_and_a_checksum_and_keep_the_previous_one(run_dir):
    raw = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert raw["format"] == ckpt_io.FORMAT_VERSION == 2 and raw["gankit_version"] == "0.1.0"
    assert hashlib.sha256(raw["payload"].numpy().tobytes()).hexdigest() == raw["sha256"]
    assert load_checkpoint(run_dir)["step"] == 4
    assert load_checkpoint(run_dir / "checkpoints" / "last.prev.pt")["step"] == 3


@pytest.mark.parametrize("damage, words", [
    (lambda b: b[: len(b) // 2], "is truncated or corrupted"),
    (lambda b: b[:100], "is truncated or corrupted"),
    (lambda b: b"", "is empty (0 bytes): its write never finished"),
    (lambda b: b[: len(b) // 2] + bytes([b[len(b) // 2] ^ 0xFF]) + b[len(b) // 2 + 1:],
     "is corrupted: its checksum does not match its contents"),
])
def test_a_damaged_checkpoint_is_reported_with_the_fallback_offered(run_dir, damage, words):
    last = run_dir / "checkpoints" / "last.pt"
    last.write_bytes(damage(last.read_bytes()))
    prev = run_dir / "checkpoints" / "last.prev.pt"
    code, _, err = gankit("run", "--resume", run_dir, "train.steps=6")
    assert code == 2 and err.startswith("error: "), err
    assert f"checkpoint '{last}' {words}" in err, err
    assert f"the previous checkpoint '{prev}' (step 3) is intact; continue from it with:" in err
    assert f"gankit run --resume {prev}" in err
    # The offered fallback works, and the run writes a good last.pt again.
    code, _, err = gankit("run", "--resume", prev, "train.steps=6")
    assert code == 0, err
    assert load_checkpoint(run_dir)["step"] == 6


def test_no_fallback_is_offered_when_there_is_none(run_dir):
    last = run_dir / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:50])
    (run_dir / "checkpoints" / "last.prev.pt").unlink()
    with pytest.raises(CheckpointError, match="no earlier checkpoint to fall back to"):
        load_checkpoint(run_dir)


def test_a_checkpoint_from_a_newer_gankit_says_so(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({"format": 99, "gankit_version": "9.0.0", "sha256": "?", "payload": torch.zeros(3, dtype=torch.uint8),
                "something_new": {"a": 1}}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(err.value) == (f"checkpoint '{path}' was written by gankit 9.0.0 (checkpoint format 99); this gankit "
                              "0.1.0 reads formats up to 2: upgrade gankit to load it")


def test_a_format_1_checkpoint_from_before_checksums_still_loads_and_resumes(run_dir):
    state = load_checkpoint(run_dir)
    state["format"] = 1
    state.pop("skipped_steps")
    state["recipe"].pop("health")  # written before the health section existed
    old = run_dir / "checkpoints" / "last.pt"
    torch.save(state, old)  # format 1: the state itself, no wrapper
    assert load_checkpoint(old)["step"] == 4
    recipe, ck, where = prepare_resume(run_dir, ["train.steps=5"])
    Trainer(recipe, resume=ck, run_dir=where, overrides=["train.steps=5"]).run()
    assert load_checkpoint(run_dir)["format"] == 2 and load_checkpoint(run_dir)["step"] == 5


def test_files_that_are_no_gankit_checkpoint(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    torch.save({"format": 2, "step": 3}, tmp_path / "partial.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="is not a gankit checkpoint"):
        load_checkpoint(tmp_path / "tensor.pt")
    with pytest.raises(CheckpointError, match="is not a complete gankit checkpoint: missing run_id, recipe, epoch"):
        load_checkpoint(tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="is truncated or corrupted"):
        load_checkpoint(tmp_path / "text.pt")


def test_another_recipes_checkpoint_names_the_mismatched_tensors(tiny, run_dir, tmp_path):
    ck = load_checkpoint(run_dir)
    tiny["generator"]["ngf"] = 16  # twice as wide as the checkpoint's
    with pytest.raises(CheckpointError) as err:
        Trainer(validate(tiny), resume=ck, run_dir=run_dir).run()
    text = str(err.value)
    assert "does not fit this recipe's generator" in text
    assert "size mismatch for main.0.weight: copying a param with shape torch.Size([8, 16, 4, 4])" in text
    # The same through the CLI: a checkpoint whose recipe says ngf 16 next to weights for ngf 8.
    ck["recipe"]["generator"]["ngf"] = 16
    ckpt_io.atomic_save(ck, tmp_path / "other.pt")
    for command in (["sample", tmp_path / "other.pt", "--out", tmp_path / "imgs"], ["run", "--resume", tmp_path / "other.pt"]):
        code, _, err = gankit(*command)
        assert code == 2 and err.startswith("error: ") and "size mismatch for main.0.weight" in err, err


def test_an_optimizer_state_from_another_recipe_is_a_clear_error(tiny, run_dir):
    ck = load_checkpoint(run_dir)
    ck["optim_d"]["param_groups"][0]["params"] = [0]  # one parameter where D has five
    with pytest.raises(CheckpointError, match="does not fit this recipe's discriminator optimizer"):
        Trainer(validate(tiny), resume=ck, run_dir=run_dir).run()


def test_nothing_in_gankit_loads_yaml_or_checkpoints_unsafely():
    """Every yaml load is safe_load, every torch.load has weights_only=True (the issue's 'done when')."""
    offenders = []
    for path in sorted((REPO / "gankit").rglob("*.py")) + sorted((REPO / "plugins").rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0]
            if "torch.load(" in code and "weights_only=True" not in code:
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
            if any(bad in code for bad in ("yaml.load(", "yaml.unsafe_load", "yaml.full_load", "yaml.Loader",
                                            "yaml.UnsafeLoader", "yaml.FullLoader", "pickle.load", "dill.load")):
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
    assert os.path.isdir(REPO / "gankit")
