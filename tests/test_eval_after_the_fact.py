"""Measuring a run after it trained: ``gankit eval RUN --log``, kept checkpoints, and torchrun's shared evaluation.

A tiny feature extractor registered by a plugin file stands in for Inception
(which needs weights this machine cannot download), so FID, KID and PRDC run
for real, fast.
"""

from __future__ import annotations

import json

import pytest

from helpers import REPO, gankit, only_run_dir, run_cli
from test_ddp import torchrun

pytestmark = pytest.mark.slow  # the slow tier: evaluations shared by processes

PLUGIN = '''
import gankit
from eval_fixtures import TinyExtractor

@gankit.hookimpl
def gankit_register(registry):
    registry("feature_extractors").register("tiny", TinyExtractor)
'''
METRICS = ["fid", {"name": "kid", "subset_size": 20, "subsets": 4}, "prdc", "swd"]


@pytest.fixture
def measured_run(tiny, tmp_path, write_recipe, monkeypatch):
    """A 6-step run keeping checkpoints at steps 2, 4 and 6, evaluated by nothing during training."""
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", str(REPO / "tests"))
    (tmp_path / "tiny_extractor.py").write_text(PLUGIN)
    tiny["plugins"] = ["tiny_extractor.py"]
    tiny["train"].update(steps=6, keep_every=2, checkpoint_every=None, sample_every=None)
    tiny["eval"] = {"metrics": METRICS, "feature_extractor": "tiny", "num_real": 40, "num_fake": 40,
                    "batch_size": 16, "every": None}
    recipe = write_recipe(tiny)
    tiny["eval"]["metrics"] = []  # the run itself measures nothing: as if trained where metrics were unavailable
    code, _, err = gankit("run", str(write_recipe(tiny, "no_eval.yaml")))
    assert code == 0, err
    return only_run_dir(tiny["out_dir"]), recipe


def rows_of(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_kept_checkpoints_and_a_whole_curve_filled_in_later(measured_run, capsys):
    run_dir, _ = measured_run
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("step_*.pt")) == \
        ["step_0000002.pt", "step_0000004.pt", "step_0000006.pt"]
    code, out, err = gankit("eval", str(run_dir), "--all-checkpoints", "--log", "--metrics", "swd", timeout=120)
    assert code == 0, err
    before_end = rows_of(run_dir)
    evals = [r for r in before_end if r["kind"] == "eval"]
    assert [(r["metric"], r["step"]) for r in evals] == [("swd", 2), ("swd", 4), ("swd", 6)]
    assert "last.pt: step 6, measured already as step_0000006.pt" in err  # the same weights, measured once
    assert all(r["logged_by"] == "gankit eval" and r["checkpoint"].endswith(".pt") for r in evals)
    ends = [r for r in before_end if r["kind"] == "end"]
    assert [e["status"] for e in ends] == ["finished"]  # logging after the fact leaves the run's end as it was
    assert "logged 3 rows to" in err
    code, out, err = gankit("compare", str(run_dir), "--metric", "swd", "--out", str(run_dir.parent / "compare.png"))
    assert code == 0 and "swd" in out, err


def test_eval_log_adds_rows_to_a_run_that_skipped_them(measured_run):
    run_dir, _ = measured_run
    code, _, err = gankit("eval", str(run_dir), "--log", "--metrics", "fid,kid,swd", "--feature-extractor", "tiny",
                          "--num-fake", "40", timeout=120)
    assert code == 0, err
    fid = [r for r in rows_of(run_dir) if r.get("metric") == "fid"]
    assert len(fid) == 1 and fid[0]["step"] == 6 and fid[0]["world_size"] == 1
    assert fid[0]["implementation"].endswith("FrechetInceptionDistance")


def test_two_processes_share_an_evaluation_and_agree_with_one(measured_run):
    run_dir, _ = measured_run
    args = [str(run_dir), "--metrics", "fid,kid,prdc,swd", "--feature-extractor", "tiny", "--num-fake", "40",
            "--kid-subset-size", "20", "--kid-subsets", "4", "--batch-size", "8", "--json", "--device", "cpu"]
    one = run_cli("eval", *args, env={"PYTHONPATH": str(REPO / "tests")})
    assert one.returncode == 0, one.stderr
    two = torchrun("-m", "gankit", "eval", *args)
    assert two.returncode == 0, two.stderr[-3000:]
    single, shared = json.loads(one.stdout), json.loads(two.stdout)  # rank 0 alone prints
    assert set(single["values"]) == set(shared["values"])
    for metric, value in single["values"].items():
        assert shared["values"][metric] == pytest.approx(value, rel=1e-6, abs=1e-12), metric
    assert {r["world_size"] for r in shared["rows"]} == {2} and {r["world_size"] for r in single["rows"]} == {1}
