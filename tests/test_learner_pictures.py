"""Pictures early (issue 23): the first grid within a minute, a grid at a stop and at a failure, readable tiles."""

import os
import signal

import pytest
from PIL import Image

from gankit.recipe import validate
from gankit.training import pictures as pictures_module
from gankit.training.reporter import Reporter
from gankit.training.trainer import RunInterrupted, train
from helpers import only_run_dir


def grids(run_dir):
    return sorted(p.name for p in (run_dir / "samples").glob("step_*.png"))


@pytest.fixture
def unscheduled(tiny):
    tiny["train"].update(steps=4, sample_every=None, checkpoint_every=None)
    return tiny


def test_without_a_schedule_the_only_grid_is_the_last_until_the_first_is_due(unscheduled):
    run_dir = train(validate(unscheduled))  # four steps take far less than FIRST_GRID_SECONDS
    assert grids(run_dir) == ["step_0000004.png"]


def test_the_first_grid_comes_when_due_whatever_sample_every_says(unscheduled, monkeypatch):
    monkeypatch.setattr(pictures_module, "FIRST_GRID_SECONDS", 0.0)  # due at once: after the first step
    unscheduled["train"]["sample_every"] = 3
    run_dir = train(validate(unscheduled))
    # the early one, then the schedule (3), then the end; never a second early grid
    assert grids(run_dir) == ["step_0000001.png", "step_0000003.png", "step_0000004.png"]


def test_training_grid_tiles_are_at_least_64_pixels(unscheduled):
    run_dir = train(validate(unscheduled))  # 16 images of 16x16 pixels, 4 to a row
    with Image.open(run_dir / "samples" / "step_0000004.png") as img:
        width, height = img.size
    # 4 tiles of 16 px and 5 gaps of 2 px, enlarged 4 times (nearest neighbour)
    assert (width, height) == ((4 * 16 + 5 * 2) * 4,) * 2


def _at_step(monkeypatch, step, action):
    original = Reporter.step_done

    def step_done(self, n):
        original(self, n)
        if n == step:
            action()

    monkeypatch.setattr(Reporter, "step_done", step_done)


def test_ctrl_c_leaves_a_grid_of_the_step_it_stopped_at(unscheduled, monkeypatch):
    unscheduled["train"]["steps"] = 50
    _at_step(monkeypatch, 2, lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(RunInterrupted):
        train(validate(unscheduled))
    assert grids(only_run_dir(unscheduled["out_dir"])) == ["step_0000002.png"]


def test_a_failure_leaves_a_grid_and_its_own_error(unscheduled, monkeypatch):
    def fail():
        raise ValueError("a plugin broke")

    _at_step(monkeypatch, 3, fail)
    with pytest.raises(ValueError, match="a plugin broke"):
        train(validate(unscheduled))
    assert grids(only_run_dir(unscheduled["out_dir"])) == ["step_0000003.png"]
