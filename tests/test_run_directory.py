"""A run directory after accidents: a torn last row, stale temporaries, two resumes at once, a failure's reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gankit.core.errors import GankitError
from gankit.recipe import validate
from gankit.training.state import prepare_resume
from gankit.rundir.layout import RunLock
from gankit.rundir.metrics import repair_record
from gankit.training.trainer import Trainer, train
from helpers import REPO, gankit


def rows_of(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_torn_last_row_and_stale_temporaries_are_cleaned_when_the_run_resumes(tiny):
    run_dir = train(validate(tiny))
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"kind": "train", "step": 5, "loss_d"')  # SIGKILL in the middle of a row
    stale = [run_dir / "samples" / ".step_0000005.tmp-999999.png", run_dir / ".recipe.yaml.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    recipe, ck, _ = prepare_resume(run_dir, ["train.steps=6"])
    Trainer(recipe, resume=ck, run_dir=run_dir).run()
    rows = rows_of(run_dir)  # every line parses again
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert any("cut a row torn by the killed run" in r.get("message", "") for r in rows)
    assert not any(p.exists() for p in stale)


def test_repair_keeps_a_record_that_is_whole():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "metrics.jsonl"
        path.write_text('{"a": 1}\n{"b": 2}\n')
        assert not repair_record(Path(d)) and path.read_text() == '{"a": 1}\n{"b": 2}\n'
        path.write_text('{"a": 1}\n{"b": 2')
        assert repair_record(Path(d)) and path.read_text() == '{"a": 1}\n'


@pytest.mark.slow
def test_two_processes_resuming_one_run_are_refused(tiny):
    run_dir = train(validate(tiny))
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from gankit.rundir.layout import RunLock; "
        "lock = RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)"), str(run_dir)],
        stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, _, err = gankit("run", "--resume", str(run_dir), "train.steps=6")
        assert code == 2 and f"is being trained by process {holder.pid} right now" in err, err
    finally:
        holder.kill()
        holder.wait()
    code, _, err = gankit("run", "--resume", str(run_dir), "train.steps=6")  # the holder died: its lock with it
    assert code == 0, err
    assert not (run_dir / ".lock").exists()


def test_a_lock_held_in_this_process_is_refused_too(tmp_path):
    first = RunLock(tmp_path).acquire()
    with pytest.raises(GankitError, match=f"process {os.getpid()}"):
        RunLock(tmp_path).acquire()
    first.release()
    RunLock(tmp_path).acquire().release()


def test_a_failure_is_recorded_with_its_type_and_message(tiny, monkeypatch):
    def broken(self, final):
        raise ValueError("the sampler fell over")

    monkeypatch.setattr(Trainer, "periodic", broken)
    trainer = Trainer(validate(tiny))
    with pytest.raises(ValueError):
        trainer.run()
    end = rows_of(trainer.run_dir)[-1]
    assert end["kind"] == "end" and end["status"] == "failed"
    assert end["error"] == {"type": "ValueError", "message": "the sampler fell over"}
