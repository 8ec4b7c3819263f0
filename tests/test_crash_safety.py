"""Crash safety: SIGKILL at random moments, a second Ctrl-C, a full disk, an unwritable folder.

Training processes are children of a fork server (tests/forkserver.py): real
processes, started in milliseconds instead of seconds of imports.
"""

from __future__ import annotations

import copy
import errno
import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from forkserver import ForkServer
from gankit.core.errors import GankitError
from gankit.recipe import validate
from gankit.rundir import checkpoint as ckpt_io
from gankit.rundir.checkpoint import load_checkpoint
from gankit.training.trainer import Trainer, train
from helpers import only_run_dir, states_equal

pytestmark = pytest.mark.slow  # the slow tier: kill loops and signals to real processes

KILLS = 20
# What must continue exactly. The loader generator's state is left out: the DataLoader draws
# one number from it whenever an iterator starts, so a resume mid-epoch draws once more than
# an uninterrupted run (it only seeds worker processes; the data order has its own generator).
KEYS = ("generator", "discriminator", "optim_g", "optim_d", "step", "epoch", "batch_in_epoch")


def exact(state: dict) -> dict:
    picked = {k: state[k] for k in KEYS}
    picked["rng"] = {k: v for k, v in state["rng"].items() if k != "loader"}
    return picked


def wait_for(condition, timeout: float = 120, poll: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return False


def temporaries(run_dir: Path, pid: int | None = None) -> list[Path]:
    return list((run_dir / "checkpoints").glob(f".*.tmp-{pid if pid is not None else '*'}"))


def recorded_states(recipe, wanted: set[int], monkeypatch) -> dict[int, dict]:
    """Train ``recipe`` keeping a copy of its checkpoint state at the ``wanted`` steps (the uninterrupted reference)."""
    states, original = {}, Trainer.periodic

    def recording(self, final):
        if self.job.counters.step in wanted:
            states[self.job.counters.step] = exact(copy.deepcopy(self.job.state.state_dict()))
        original(self, final)

    monkeypatch.setattr(Trainer, "periodic", recording)
    Trainer(recipe).run()
    return states


def test_sigkill_at_random_moments_leaves_a_checkpoint_that_resumes_exactly(tiny, write_recipe, tmp_path, monkeypatch):
    rng = random.Random(20261130)
    tiny["train"].update(steps=10**6, checkpoint_every=1, sample_every=25, log_every=1)
    recipe, out = write_recipe(tiny), Path(tiny["out_dir"])
    seen: dict[int, dict] = {}  # step -> the checkpoint found there after a kill
    moments: Counter = Counter()
    run_dir = None
    t0 = time.monotonic()
    with ForkServer() as server:
        for i in range(KILLS):
            argv = ["run", recipe] if run_dir is None else ["run", "--resume", run_dir]
            metrics = run_dir / "metrics.jsonl" if run_dir else None
            size = metrics.stat().st_size if metrics else 0
            pid = server.start(argv, tmp_path / f"run{i}.log")
            moment = "while starting" if run_dir and i % 4 == 1 else "during a checkpoint write" if i % 4 == 3 else "while training"
            if moment == "while starting":  # imports are done: restore, dataset, models, first steps
                time.sleep(rng.uniform(0, 0.4))
            else:
                if run_dir is None:
                    assert wait_for(lambda: list(out.glob("*/*/checkpoints/last.pt"))), "no first checkpoint"
                    run_dir = only_run_dir(out)
                    metrics = run_dir / "metrics.jsonl"
                assert wait_for(lambda: metrics.stat().st_size > size + 200), (tmp_path / f"run{i}.log").read_text()
                if moment == "while training":
                    time.sleep(rng.uniform(0, 0.3))
                else:
                    time.sleep(rng.uniform(0, 0.2))
                    wait_for(lambda: temporaries(run_dir, pid), timeout=5, poll=0.0005)
                    time.sleep(rng.uniform(0, 0.002))
            os.kill(pid, signal.SIGKILL)
            assert server.wait(pid) == -signal.SIGKILL, (tmp_path / f"run{i}.log").read_text()
            if temporaries(run_dir, pid):
                moment = "during a checkpoint write"  # confirmed: its temporary was left behind
            elif moment == "during a checkpoint write":
                moment = "while training"  # the write had finished
            moments[moment] += 1
            ck = load_checkpoint(run_dir)  # the latest checkpoint always loads
            state = exact(ck)
            if ck["step"] in seen:
                assert states_equal(state, seen[ck["step"]])
            seen[ck["step"]] = state
        last = max(seen)
        pid = server.start(["run", "--resume", run_dir, f"train.steps={last + 2}"], tmp_path / "final.log")
        assert server.wait(pid) == 0, (tmp_path / "final.log").read_text()
    final = load_checkpoint(run_dir)
    assert final["step"] == last + 2
    assert not temporaries(run_dir), "a resumed run removes what killed writers left"
    killed_for = time.monotonic() - t0

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the children: bit-identical arithmetic
    try:
        tiny["train"].update(steps=last + 2, checkpoint_every=None, sample_every=None)
        reference = recorded_states(validate(tiny), set(seen) | {last + 2}, monkeypatch)
    finally:
        torch.set_num_threads(threads)
    for step, state in seen.items():
        assert states_equal(state, reference[step]), f"the checkpoint at step {step} differs from the reference"
    assert states_equal(exact(final), reference[last + 2]), "resuming did not continue exactly"
    print(f"\nkill test: {KILLS} SIGKILLs in {killed_for:.0f} s ({', '.join(f'{n} {m}' for m, n in moments.items())}); "
          f"checkpoints at {len(seen)} distinct steps up to {last}, every one loaded and matched an uninterrupted run; "
          f"the last resumed to step {last + 2} exactly")
    assert moments["during a checkpoint write"] >= 1, moments


def test_a_second_ctrl_c_stops_at_once_and_corrupts_nothing(tiny, write_recipe, tmp_path):
    rng = random.Random(7)
    tiny["train"].update(steps=10**6, checkpoint_every=1, sample_every=None, log_every=1)
    recipe, out = write_recipe(tiny), Path(tiny["out_dir"])
    run_dir = None
    endings: Counter = Counter()
    with ForkServer() as server:
        for i in range(6):
            argv = ["run", recipe] if run_dir is None else ["run", "--resume", run_dir]
            log = tmp_path / f"run{i}.log"
            pid = server.start(argv, log)
            assert wait_for(lambda: list(out.glob("*/*/checkpoints/last.pt")))
            run_dir = only_run_dir(out)
            size = (run_dir / "metrics.jsonl").stat().st_size
            assert wait_for(lambda: (run_dir / "metrics.jsonl").stat().st_size > size + 200), log.read_text()
            os.kill(pid, signal.SIGINT)
            time.sleep(rng.uniform(0, 0.02))  # the first asks for a checkpoint; the second lands anywhere in it
            os.kill(pid, signal.SIGINT)
            assert server.wait(pid) == 130, log.read_text()
            text = log.read_text()
            assert "interrupted (SIGINT)" in text and "Traceback" not in text, text
            endings["stopped at once" if "stopped at once" in text else "checkpoint saved first"] += 1
            load_checkpoint(run_dir)
            assert not temporaries(run_dir)
        pid = server.start(["run", "--resume", run_dir, f"train.steps={load_checkpoint(run_dir)['step'] + 1}"],
                           tmp_path / "final.log")
        assert server.wait(pid) == 0
    print(f"\ndouble Ctrl-C: {dict(endings)}; every checkpoint loaded, the run resumed")
    assert endings["stopped at once"] >= 1, endings


def test_full_disk_names_the_path_and_keeps_the_previous_checkpoint(tiny, write_recipe, tmp_path):
    run_dir = train(validate(tiny))  # 4 steps, checkpoints at 2 and 4
    before = (run_dir / "checkpoints" / "last.pt").read_bytes()
    size = len(before)
    with ForkServer() as server:  # files may not grow past half a checkpoint: the write fails with EFBIG
        pid = server.start(["run", "--resume", run_dir, "train.steps=6"], tmp_path / "log", max_file_size=size // 2)
        assert server.wait(pid) == 2
    text = (tmp_path / "log").read_text()
    assert f"error: cannot write checkpoint '{run_dir / 'checkpoints'}" in text and "File too large" in text, text
    assert "the previous checkpoint" in text and "is intact" in text and "Traceback" not in text
    assert (run_dir / "checkpoints" / "last.pt").read_bytes() == before
    assert load_checkpoint(run_dir)["step"] == 4 and not temporaries(run_dir)


def test_no_space_left_on_device(tiny, monkeypatch):
    run_dir = train(validate(tiny))
    before = (run_dir / "checkpoints" / "last.pt").read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt_io.os, "fsync", full)
    with pytest.raises(GankitError, match=r"cannot write checkpoint .*No space left on device.*is intact"):
        ckpt_io.atomic_save({"x": torch.zeros(3)}, run_dir / "checkpoints" / "last.pt", keep_previous=True)
    monkeypatch.undo()
    assert (run_dir / "checkpoints" / "last.pt").read_bytes() == before and not temporaries(run_dir)


def _immutable(path: Path, on: bool) -> bool:
    """chattr +i: not even root may write in ``path`` (chmod does not stop root)."""
    result = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True)
    return result.returncode == 0


def test_unwritable_folders_name_the_path(tiny, write_recipe, tmp_path):
    run_dir = train(validate(tiny))
    ckpts = run_dir / "checkpoints"
    if not _immutable(ckpts, True):
        pytest.skip("chattr +i is not available here (and chmod does not stop root)")
    try:
        with ForkServer() as server:
            pid = server.start(["run", "--resume", run_dir, "train.steps=6"], tmp_path / "log")
            assert server.wait(pid) == 2
        text = (tmp_path / "log").read_text()
        assert f"error: cannot write checkpoint '{ckpts}" in text and "Operation not permitted" in text, text
        assert load_checkpoint(run_dir)["step"] == 4
        tiny["out_dir"] = str(ckpts / "runs")  # a new run under a folder that cannot take one
        with pytest.raises(GankitError, match=f"cannot create the run directory '{ckpts}"):
            train(validate(tiny))
    finally:
        _immutable(ckpts, False)
