"""The messages a learner's first runs found wrong (issue 23): resume, skipped images, skipped metrics, `gankit runs`."""

import json
import os
import signal
from argparse import Namespace

import pytest
from PIL import Image

from gankit.commands import runs as runs_command
from gankit.recipe import validate
from gankit.rundir.checkpoint import load_checkpoint
from gankit.rundir.metrics import read_metrics
from gankit.rundir.record import load_run
from gankit.runs.compare import skipped_notes
from gankit.training.reporter import Reporter
from gankit.training.state import prepare_resume
from gankit.training.trainer import RunInterrupted, Trainer, train
from helpers import only_run_dir


def test_a_resume_says_where_it_resumes(tiny, capsys):
    run_dir = train(validate(tiny))
    capsys.readouterr()
    recipe, ckpt, run_dir = prepare_resume(str(run_dir), ["train.steps=6"])
    Trainer(recipe, overrides=["train.steps=6"], resume=ckpt, run_dir=run_dir).run()
    # 4 steps of 16 digits: still the first epoch (epochs count from 0)
    assert f"resuming {run_dir} at step 4 (epoch {ckpt['epoch']})" in capsys.readouterr().err


@pytest.fixture
def one_bad_file(tiny, tmp_path):
    folder = tmp_path / "imgs" / "all"
    folder.mkdir(parents=True)
    for i in range(8):
        Image.new("RGB", (20, 20), (i * 20, 100, 50)).save(folder / f"{i:03d}.png")
    (folder / "zzz_truncated.png").write_bytes((folder / "000.png").read_bytes()[:40])
    tiny["data"] = {"name": "imagefolder", "root": str(tmp_path / "imgs"), "image_size": 16, "channels": 3,
                    "batch_size": 4, "workers": 0, "on_bad_image": "skip"}
    tiny["train"].update(steps=12, sample_every=None, checkpoint_every=None)  # several epochs
    return tiny


def test_an_unreadable_file_is_counted_once_not_once_per_epoch(one_bad_file, capsys):
    run_dir = train(validate(one_bad_file))
    assert load_checkpoint(run_dir)["epoch"] >= 2  # the bad file came round at least three times
    events = [r for r in read_metrics(run_dir) if r.get("event") == "skipped_images"]
    assert [(e["count"], e["total"]) for e in events] == [(1, 1)]
    assert "skipped 1 unreadable images" in capsys.readouterr().err
    recipe, ckpt, run_dir = prepare_resume(str(run_dir), ["train.steps=16"])  # and again after a resume
    Trainer(recipe, overrides=["train.steps=16"], resume=ckpt, run_dir=run_dir).run()
    assert load_checkpoint(run_dir)["skipped_images"] == 1
    assert len([r for r in read_metrics(run_dir) if r.get("event") == "skipped_images"]) == 1


def test_a_resumed_run_is_one_run_that_skipped_a_metric(tiny):
    run_dir = train(validate(tiny))
    skipped = {"kind": "event", "event": "metrics_skipped", "metrics": ["fid"], "reason": "no Inception weights",
               "fill_in": f"gankit eval {run_dir} --log"}
    with open(run_dir / "metrics.jsonl", "a") as f:  # what a run and then its resume write
        for row in (skipped, {"kind": "event", "event": "resumed"}, skipped):
            f.write(json.dumps({**row, "step": 4}) + "\n")
    (note,) = skipped_notes([load_run(run_dir)]).values()
    assert "skipped in 1 run(s)" in note


def test_gankit_runs_shows_the_step_an_interrupted_run_saved(tiny, monkeypatch, capsys):
    tiny["train"].update(steps=50, log_every=3, sample_every=None, checkpoint_every=None)
    original = Reporter.step_done

    def step_done(self, n):
        original(self, n)
        if n == 5:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Reporter, "step_done", step_done)
    with pytest.raises(RunInterrupted):
        train(validate(tiny))
    run_dir = only_run_dir(tiny["out_dir"])
    assert load_checkpoint(run_dir)["step"] == 5  # saved at 5; the last train row logged is step 3
    capsys.readouterr()
    assert runs_command.run(Namespace(dir=str(run_dir.parent.parent))) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if run_dir.name in ln]
    assert line.split()[2:4] == ["interrupted", "5"], line
