"""The CPU hint (issue 23): a run on a CPU that would take over an hour says, once, how to make it smaller."""

import shutil

import pytest

from gankit.recipe import load_recipe, validate
from gankit.training import reporter as reporter_module
from gankit.training.reporter import SlowRunHint, cpu_hint
from gankit.training.trainer import Trainer, train
from helpers import REPO


@pytest.fixture
def tutorial(tmp_path):
    path = tmp_path / "dcgan_celeba.yaml"
    shutil.copy(REPO / "recipes" / "dcgan_celeba.yaml", path)
    return path


def test_the_hint_names_the_cpu_sibling_with_the_users_data(tutorial):
    (cpu := tutorial.with_name("dcgan_celeba_cpu.yaml")).write_text("name: x\n")
    overrides = ["data.root=../faces", "train.epochs=1"]
    hint = cpu_hint(load_recipe(tutorial, overrides), str(tutorial), overrides)
    assert hint.endswith(f"gankit run {cpu} data.root=../faces")  # the data kept, the rest is the CPU recipe's


def test_without_a_sibling_the_hint_names_the_overrides_that_shrink_it(tutorial):
    hint = cpu_hint(load_recipe(tutorial), str(tutorial), [])
    assert hint.endswith("add data.image_size=32 generator.ngf=32 discriminator.ndf=32")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("seconds_per_step,shown", [(10.0, True), (1.0, False)])
def test_an_hour_or_more_estimated_from_timed_steps_is_said_once(monkeypatch, seconds_per_step, shown):
    clock = Clock()
    monkeypatch.setattr(reporter_module.time, "perf_counter", clock)
    hint = SlowRunHint("use the CPU recipe", total=1000, start=0)
    said = []
    for step in range(1, 20):
        clock.now += 100.0 if step == 1 else seconds_per_step  # the first step warms up: not timed
        said.append(hint.step_done(step))
    lines = [s for s in said if s]
    if shown:  # 10 s a step: 1000 steps take 2h46m
        assert lines == ["hint: on this CPU the run's 1000 steps take about 2h46m (10.0 s a step); use the CPU recipe"]
        assert said.index(lines[0]) == 3  # after the warm-up step and three timed ones
    else:
        assert lines == []


def test_a_training_run_prints_the_hint_once_and_records_it(tiny, write_recipe, monkeypatch, capsys):
    tiny["train"]["steps"] = 12
    path = write_recipe(tiny, "tiny.yaml")
    write_recipe(tiny, "tiny_cpu.yaml")
    train(validate(tiny))
    assert "hint:" not in capsys.readouterr().err  # a short run: no hint
    monkeypatch.setattr(reporter_module, "HINT_SECONDS", 0.0)
    run_dir = Trainer(load_recipe(path), source=str(path)).run()
    err = capsys.readouterr().err
    assert err.count("hint:") == 1 and f"gankit run {path.with_name('tiny_cpu.yaml')}" in err
    assert "tiny_cpu.yaml" in (run_dir / "metrics.jsonl").read_text()  # recorded as a notice
