"""The tutorial's plots (issue 23): in every run directory, in the run's report, and in wandb."""

import os
import signal
from argparse import Namespace

import pytest
from PIL import Image

from gankit.commands import report as report_command
from gankit.recipe import validate
from gankit.runs.tutorial_plots import evenly, write_tutorial_plots
from gankit.training.reporter import Reporter
from gankit.training.trainer import RunInterrupted, train
from helpers import only_run_dir
from test_logging_wandb import wandb_env  # noqa: F401 - the fixture: wandb offline inside tmp_path

PLOTS = ("losses.png", "progress.gif", "real_vs_fake.png")


def test_a_finished_run_holds_the_three_plots_and_the_real_grid(tiny):
    tiny["train"].update(steps=6, sample_every=2)
    run_dir = train(validate(tiny))
    for name in PLOTS:
        assert (run_dir / name).stat().st_size > 0, name
    with Image.open(run_dir / "progress.gif") as gif:  # a frame per grid: steps 2, 4, 6
        assert gif.n_frames == 3
        assert gif.size == Image.open(run_dir / "samples" / "step_0000006.png").size
    with Image.open(run_dir / "samples" / "real.png") as real:  # 16 real digits, enlarged like the fakes
        assert real.size == Image.open(run_dir / "samples" / "step_0000006.png").size
    with Image.open(run_dir / "losses.png") as losses:
        assert losses.size[0] > losses.size[1]  # the tutorial's wide figure


def test_an_interrupted_run_holds_them_too(tiny, monkeypatch):
    tiny["train"].update(steps=50, sample_every=None, checkpoint_every=None)
    original = Reporter.step_done

    def step_done(self, n):
        original(self, n)
        if n == 3:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Reporter, "step_done", step_done)
    with pytest.raises(RunInterrupted):
        train(validate(tiny))
    run_dir = only_run_dir(tiny["out_dir"])
    assert all((run_dir / name).is_file() for name in PLOTS)


def test_the_report_shows_them_and_draws_them_for_an_older_run(tiny, capsys):
    run_dir = train(validate(tiny))
    for name in PLOTS:  # as a run trained before gankit drew them
        (run_dir / name).unlink()
    assert report_command.run(Namespace(runs=[str(run_dir)], out=None, baseline=None, group_by=None, metric=None,
                                        ci=0.95, seed=0)) == 0
    page = (run_dir / "report.html").read_text()
    assert "Generator and Discriminator loss" in page and "data:image/gif;base64," in page
    assert page.count("class='tutorial'") == 3 + 1  # three figures in their section
    assert all((run_dir / name).is_file() for name in PLOTS)


def test_nothing_to_draw_draws_nothing(tmp_path, tiny):
    run_dir = train(validate(tiny))
    (run_dir / "metrics.jsonl").write_text("")
    for grid in (run_dir / "samples").glob("*.png"):
        grid.unlink()
    for name in PLOTS:
        (run_dir / name).unlink()
    assert write_tutorial_plots(run_dir) == {}


def test_a_long_run_keeps_evenly_spaced_frames_with_the_last():
    frames = evenly(list(range(1000)), 60)
    assert len(frames) == 60 and frames[0] == 0 and frames[-1] == 999


@pytest.mark.slow
def test_wandb_gets_the_same_plots(tiny, wandb_env):
    from test_logging_wandb import history, wandb_files

    tiny["log"]["wandb"] = {"mode": "offline"}
    run_dir = train(validate(tiny))
    (wb,) = wandb_files(run_dir)
    rows = history(wb)
    logged = {key.split(".")[0] for row in rows for key in row if key.endswith("._type")}
    assert {"samples", "losses", "progress", "real_vs_fake"} <= logged, logged
    (last,) = [row for row in rows if "progress._type" in row]
    assert last["_step"] == 4 and last["progress.path"].endswith(".gif")
