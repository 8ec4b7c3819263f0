"""Reading runs back: gankit.load_run, `gankit runs`, and compare/report over several runs.

Two tiny real runs (bce and hinge, SWD at the end) in nested folders, plus
copies edited the way other writers leave runs: killed before the end, a
metric skipped (the trainer's metrics_skipped event), a metric measured
differently.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import types
from pathlib import Path

import pytest
import yaml
from PIL import Image

import gankit
from gankit.runs.compare import labels, series
from gankit.rundir.metrics import iter_metrics
from gankit.rundir.record import RunRecord, load_run
from helpers import TINY
from helpers import gankit as run_gankit

CHROMIUM = Path("/usr/bin/chromium")
SKIPPED = {"kind": "event", "step": 4, "event": "metrics_skipped", "metrics": ["fid", "kid"],
           "reason": "no Inception weights", "fill_in": "gankit eval RUN --all-checkpoints --log"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """DIR/a/tiny/<id> (bce, with a skipped-metrics event) and DIR/b/deeper/tiny/<id> (hinge)."""
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        for out, loss in (("a", "bce"), ("b/deeper", "hinge")):
            recipe = copy.deepcopy(TINY)
            recipe.update(out_dir=str(root / out), eval={"metrics": ["swd"], "num_fake": 64, "num_real": 64})
            path = root / f"{loss}.yaml"
            path.write_text(yaml.safe_dump(recipe))
            code, _, err = run_gankit("run", path, f"loss.name={loss}", timeout=120)
            assert code == 0, err
    (a,) = (root / "a").glob("tiny/*")
    with open(a / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(SKIPPED) + "\n")
    return root


def run_dir(root: Path, which: str) -> Path:
    (path,) = (root / which).glob("**/tiny/*")
    return path


def test_load_run_is_what_compare_and_report_read(runs):
    path = run_dir(runs, "a")
    run = gankit.load_run(path)
    assert isinstance(run, RunRecord) and run.path == path and run.id == path.name
    assert run.name == "tiny" and run.recipe["loss"]["name"] == "bce" and "gankit" not in run.recipe
    assert run.provenance["run_id"] == path.name and "torch" in run.provenance and run.overrides == ["loss.name=bce"]
    assert run.status == "finished" and run.digest().steps == 4
    # best.pt: the best of the first metric measured (swd, eval.best_metric unset)
    assert [p.name for p in run.checkpoints] == ["best.pt", "last.prev.pt", "last.pt"]
    assert [p.name for p in run.samples] == ["step_0000002.png", "step_0000004.png"]
    assert run.metrics == ["swd"] and run.final("swd") == run.best("swd") > 0
    assert run.final_row("swd")["num_fake"] == 64 and run.skipped_metrics()[0]["metrics"] == ["fid", "kid"]
    rows = run.iter_rows("eval")
    assert isinstance(rows, types.GeneratorType)  # streamed, not read whole
    assert [r["metric"] for r in rows] == ["swd"]
    assert len(list(iter_metrics(path, ["train"]))) == 4
    with pytest.raises(gankit.core.errors.GankitError, match="not a gankit run directory"):
        load_run(path.parent)
    from gankit.rundir.metrics import read_metrics

    assert read_metrics(path)[-1]["event"] == "metrics_skipped"


def test_status_of_killed_and_resumed_runs(tmp_path):
    rows = [{"kind": "train", "step": 5}, {"kind": "end", "status": "interrupted"}]
    assert RunRecord(tmp_path, {}, rows).status == "interrupted"
    assert RunRecord(tmp_path, {}, rows + [{"kind": "event", "event": "resumed"}]).status == "running/killed"
    assert RunRecord(tmp_path, {}, rows + [{"kind": "event", "event": "resumed"},
                                           {"kind": "end", "status": "finished"}]).status == "finished"
    assert RunRecord(tmp_path, {}, [{"kind": "train", "step": 1}]).status == "running/killed"
    # final = the highest step's row (gankit eval --log may append older steps after the end)
    evals = [{"kind": "eval", "metric": "fid", "step": s, "value": v} for s, v in ((10, 5.0), (20, 4.0), (5, 9.0))]
    assert RunRecord(tmp_path, {}, evals).final("fid") == 4.0
    # the fill-in command of a metrics_skipped event, for this run or as a template
    from gankit.rundir.record import fill_in

    run = RunRecord(tmp_path / "RUNS" / "r1", {})
    for given in ("gankit eval RUN --all-checkpoints --log", f"gankit eval {run.path} --all-checkpoints --log"):
        assert fill_in(run, {"fill_in": given}) == f"gankit eval {run.path} --all-checkpoints --log"
        assert fill_in(run, {"fill_in": given}, "RUN_DIR") == "gankit eval RUN_DIR --all-checkpoints --log"
    # the run recorded its absolute path; compare was given a relative one
    relative = RunRecord(Path(os.path.relpath(run.path)), {})
    given = f"gankit eval {run.path.resolve()} --log"
    assert fill_in(relative, {"fill_in": given}, "RUN_DIR") == "gankit eval RUN_DIR --log"


def test_runs_lists_every_run_found_recursively(runs, tmp_path):
    killed = tmp_path / "killed" / "tiny" / "20990101-000000-dead"
    shutil.copytree(run_dir(runs, "b"), killed)
    lines = (killed / "metrics.jsonl").read_text().splitlines()
    (killed / "metrics.jsonl").write_text("\n".join(lines[:3]) + "\n")  # killed at step 3
    code, text, _ = run_gankit("runs", runs)
    assert code == 0 and "2 run(s)" in text
    (a,) = [line for line in text.splitlines() if line.startswith("a/tiny/")]
    assert re.split(r"\s{2,}", a) == [f"a/tiny/{run_dir(runs, 'a').name}", "tiny", "finished", "4",
                                      f"swd {load_run(run_dir(runs, 'a')).best('swd'):.4g}", "loss.name=bce"]
    assert "b/deeper/tiny/" in text and "loss.name=hinge" in text
    code, text, _ = run_gankit("runs", tmp_path / "killed")
    assert code == 0 and re.split(r"\s{2,}", text.splitlines()[2])[2:4] == ["running/killed", "3"]
    assert run_gankit("runs", tmp_path / "nothing")[0] == 2
    (tmp_path / "empty").mkdir()
    assert "no runs under" in run_gankit("runs", tmp_path / "empty")[1]


def test_compare_a_folder_names_runs_by_their_settings(runs, tmp_path):
    code, text, err = run_gankit("compare", runs, "--out", tmp_path / "c.png", "--grids", tmp_path / "g.png")
    assert code == 0, err
    header = text.splitlines()[0].split()
    assert header[:3] == ["run", "recipe", "status"] and "loss.name" in header
    assert any(h.startswith("swd") and h.endswith("↓") for h in header)  # the default metric, budget named, ↓
    assert not any(h.startswith("fid") for h in header)
    assert "loss.fake_label" not in header  # BCE's own argument: loss.name says it (counted under the table)
    assert "fid, kid were skipped in 1 run(s) (no Inception weights); fill them in with: gankit eval RUN_DIR " \
           "--all-checkpoints --log" in text
    assert labels([load_run(run_dir(runs, w)) for w in "ab"]) == ["loss.name=bce", "loss.name=hinge"]
    with Image.open(tmp_path / "g.png") as im:
        assert im.width > 2 * 256  # two grids side by side
    code, _, err = run_gankit("compare", runs, "--out", tmp_path / "g.png", "--grids", tmp_path / "g.png")
    assert code == 2 and "name the same file" in err  # the grids would replace the plot


def test_metric_is_checked_against_what_the_runs_recorded(runs, tmp_path):
    code, _, err = run_gankit("compare", runs, "--metric", "swdd", "--out", tmp_path / "c.png")
    assert code == 2 and "did you mean 'swd'?" in err and "metrics these runs recorded: swd" in err
    code, _, err = run_gankit("compare", runs, "--metric", "fid", "--out", tmp_path / "c.png")
    assert code == 2 and "fid was skipped" in err and "--all-checkpoints --log" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_gankit("compare", tmp_path / "empty")
    assert code == 2 and "is not a gankit run directory and holds none" in err


def test_numbers_measured_differently_are_not_compared(runs, tmp_path):
    for which in "ab":
        shutil.copytree(run_dir(runs, which), tmp_path / which)
    path = tmp_path / "b" / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        if row.get("kind") == "eval":
            row["num_fake"] = 32
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, text, _ = run_gankit("compare", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "c.png")
    assert code == 0 and "swd: not compared, its num_fake differs between runs: 64" in text
    code, text, _ = run_gankit("compare", tmp_path, "--group-by", "loss.name", "--out", tmp_path / "c.png")
    assert code == 0 and "swd↓ mean" not in text and "swd↓ final" not in text and "num_fake differs" in text
    code, _, err = run_gankit("compare", tmp_path, "--group-by", "loss.name", "--metric", "swd",
                              "--out", tmp_path / "c.png")
    assert code == 2 and "num_fake differs" in err


def test_report_over_several_runs(runs, tmp_path):
    a, b = run_dir(runs, "a"), run_dir(runs, "b")
    page = tmp_path / "two.html"
    code, _, err = run_gankit("report", a, b, "--out", page)
    assert code == 0, err
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", html) and not re.search(r"https?://", html)
    assert "<h1>2 runs</h1>" in html and "Settings that differ" in html
    assert "<td>loss.name</td><td>bce</td><td>hinge</td>" in html  # the config diff
    assert html.count("class='grid'") == 2  # last grids side by side
    assert "laplacian_pyramid_patches" in html and "num_fake: 64" in html  # each run's metrics, provenance
    assert "Skipped: <b>fid, kid</b> (no Inception weights)" in html
    assert f"gankit eval {a} --all-checkpoints --log" in html  # how to fill them in, for this run
    if CHROMIUM.exists():
        from test_compare_report import chromium

        dom = chromium("--dump-dom", page.resolve().as_uri(), tmp=tmp_path / "profile").stdout
        imgs = re.findall(r"<img [^>]*>", dom)
        assert len(imgs) >= 5 and f'data-images-ok="{len(imgs)}/{len(imgs)}"' in dom


def test_a_step_measured_again_counts_once_with_its_last_value():
    """A curve after `gankit eval --log --all-checkpoints` on a run that measured itself: one point a step."""
    rows = [{"kind": "eval", "metric": "swd", "step": s, "value": v}
            for s, v in [(100, 150.0), (200, 119.0), (300, 117.0), (100, 151.0), (200, 118.0), (300, 116.0)]]
    rows.insert(2, {"kind": "eval", "metric": "fid", "step": 250, "value": 9.0})
    assert series(rows, "value", "swd") == ([100, 200, 300], [151.0, 118.0, 116.0])


def test_a_resumed_run_s_train_curve_has_one_point_a_step():
    """Killed at step 30 after a checkpoint at 20, resumed: steps 21-30 are logged twice; the second counts."""
    from gankit.rundir.record import digest

    rows = [{"kind": "train", "step": s, "loss_d": float(s)} for s in (10, 20, 30)]
    rows += [{"kind": "event", "event": "resumed", "step": 20}]
    rows += [{"kind": "train", "step": s, "loss_d": s + 0.5} for s in (30, 40)]
    assert digest(rows).curves["loss_d"] == ([10, 20, 30, 40], [10.0, 20.0, 30.5, 40.5])


def test_with_three_runs_or_more_each_is_named_by_where_it_departs_from_most():
    def run(id_, **changes):
        recipe = {"loss": {"name": "bce"}, "seed": 0, "data": {"batch_size": 64}, "train": {"steps": 200}}
        for key, value in changes.items():
            section, _, name = key.partition("__")
            recipe[section] = {**recipe[section], name: value} if name else value
        return types.SimpleNamespace(id=id_, recipe=recipe)

    runs = [run("r1", train__steps=300), run("r2", loss__name="lsgan"), run("r3", seed=1),
            run("r4", data__batch_size=32, train__steps=50), run("r5")]
    assert labels(runs) == ["train.steps=300", "loss.name=lsgan", "seed=1", "data.batch_size=32, train.steps=50",
                            "r5"]  # r5 has what most runs have: its id names it
    # two runs, or a tie: no setting is the common one, so every differing setting names every run
    assert labels(runs[1:3]) == ["loss.name=lsgan, seed=0", "loss.name=bce, seed=1"]
