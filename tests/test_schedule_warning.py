"""``gankit validate`` warns when a schedule ends before the run: its final value would be held flat."""

from __future__ import annotations

import gankit
from gankit.recipe.schedules import schedule_warnings
from helpers import REPO, run_cli

TINY_R3GAN = REPO / "recipes" / "r3gan_tiny.yaml"


def test_a_longer_run_than_its_schedules_is_warned_about_with_the_fix():
    recipe = gankit.load_recipe(TINY_R3GAN)
    run_images = recipe.train.steps * recipe.data.batch_size
    steps = recipe.train.steps * 4
    result = run_cli("validate", str(TINY_R3GAN), f"train.steps={steps}")
    assert result.returncode == 0, result.stderr  # a warning, not an error
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr  # the five schedules end together: one warning names them all
    text = warnings[0]
    totals = {s.args["total_nimg"] for s in recipe.schedules}
    assert totals == {run_images}  # the shipped recipe's schedules span its own length
    assert all(f"schedules.{i} (" in text for i in range(len(recipe.schedules)))
    assert "optim.g.lr, optim.d.lr" in text and "augment.p" in text
    assert f"total_nimg {run_images:,} images" in text
    assert f"the run is {steps * recipe.data.batch_size:,} images" in text
    assert f"train.steps {steps:,} × data.batch_size {recipe.data.batch_size}" in text
    assert "held flat for the last 75% of the run" in text
    assert f"schedules.0.total_nimg={steps * recipe.data.batch_size}" in text  # the fix, as an override


def test_schedules_that_span_the_run_and_runs_by_epochs_are_not_warned_about():
    assert schedule_warnings(gankit.load_recipe(TINY_R3GAN)) == []
    assert schedule_warnings(gankit.load_recipe(TINY_R3GAN, ["train.steps=10"])) == []  # a shorter run: fine
    result = run_cli("validate", str(TINY_R3GAN))
    assert result.returncode == 0 and "warning:" not in result.stderr, result.stderr
    # train.epochs alone: the length depends on the dataset, which validation does not read
    by_epochs = gankit.load_recipe(TINY_R3GAN, ["train.steps=null", "train.epochs=100"])
    assert schedule_warnings(by_epochs) == []


def test_d_steps_count_in_the_run_length():
    recipe = gankit.load_recipe(TINY_R3GAN, ["train.d_steps=2"])
    (text,) = schedule_warnings(recipe)
    assert f"× train.d_steps 2" in text and "held flat for the last 50% of the run" in text
