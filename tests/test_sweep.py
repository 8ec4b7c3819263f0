"""`gankit sweep` on tiny runs: a 2 × 2 grid × seeds, compared with intervals, reported in Chromium.

One sweep (loss.name=bce,hinge × 2 seeds, 20 steps, --jobs 2) serves the
module; the runs are real `gankit run` processes. Validation and argument
mistakes run nothing.
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from gankit.rundir.record import load_run
from gankit.runs.stats import mean_interval, welch
from helpers import TINY, gankit

pytestmark = pytest.mark.slow  # the slow tier: sweeps of several runs

CHROMIUM = Path("/usr/bin/chromium")


def sweep_recipe(tmp: Path) -> Path:
    """The tiny recipe, SWD at the end (cheap, no weights), a grid only at the end, wandb off."""
    recipe = copy.deepcopy(TINY)
    recipe["train"].update(sample_every=None, checkpoint_every=None, log_every=5)
    recipe["eval"] = {"metrics": ["swd"], "num_fake": 64, "num_real": 64}
    recipe["log"] = {"progress": "none", "wandb": {"mode": "disabled"}}
    path = tmp / "tiny_sweep.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("sweep")
    out = tmp / "SWEEP"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        code, stdout, stderr = gankit("sweep", sweep_recipe(tmp), "--grid", "loss.name=bce,hinge", "--seeds", "2",
                                      "train.steps=20", "--jobs", "2", "--out", out, timeout=240)
    assert code == 0, stdout + stderr
    return out, stdout


def test_sweep_makes_one_ordinary_run_per_combination(sweep):
    out, stdout = sweep
    assert "4 runs = loss.name (2) × 2 seed(s) [1, 2]" in stdout
    assert "4 finished, 0 failed, 0 interrupted" in stdout
    state = yaml.safe_load((out / "sweep.yaml").read_text())
    assert state["grid"] == {"loss.name": ["bce", "hinge"]} and state["seeds"] == [1, 2]
    assert [(r["settings"], r["status"]) for r in state["runs"]] == [
        (["loss.name=bce", "seed=1"], "finished"), (["loss.name=bce", "seed=2"], "finished"),
        (["loss.name=hinge", "seed=1"], "finished"), (["loss.name=hinge", "seed=2"], "finished")]
    for job in state["runs"]:
        run = load_run(out / job["run_dir"])
        assert run.path.parent.parent.parent == out / "runs"  # SWEEP/runs/<job>/<recipe>/<run id>
        assert run.status == "finished" and run.digest().steps == 20
        loss, seed = job["settings"][0].split("=")[1], int(job["settings"][1].split("=")[1])
        # wandb: every run in group SWEEP, with sweep=SWEEP and its seed in the config (= the resolved recipe)
        assert (run.recipe["loss"]["name"], run.recipe["seed"], run.recipe["sweep"]) == (loss, seed, "SWEEP")
        assert run.recipe["log"]["wandb"]["group"] == "SWEEP"
        assert run.final("swd") is not None
        log = (out / "logs" / f"{job['name']}.log").read_text()
        assert log.startswith("# gankit sweep: attempt 1") and "run finished" in log


def final_values(out: Path, loss: str) -> list[float]:
    state = yaml.safe_load((out / "sweep.yaml").read_text())
    return [load_run(out / r["run_dir"]).final("swd") for r in state["runs"] if r["settings"][0] == f"loss.name={loss}"]


def columns(text: str, start: str) -> list[str]:
    (line,) = [line for line in text.splitlines() if line.startswith(start)]
    return re.split(r"\s{2,}", line.strip())


def test_compare_a_sweep_groups_by_its_grid_with_intervals(sweep, tmp_path):
    out, _ = sweep
    code, text, err = gankit("compare", out, "--out", tmp_path / "c.png", "--grids", tmp_path / "g.png")
    assert code == 0, err
    assert "4 runs in 2 groups by loss.name" in text
    header = re.split(r"\s{2,}", text.splitlines()[1].strip())
    assert header[:4] == ["group", "n", "status", "steps"] and "swd64↓ 95% CI" in header
    for loss in ("bce", "hinge"):
        row = columns(text, f"loss.name={loss}")
        values = final_values(out, loss)
        iv = mean_interval(values, "bootstrap")  # SWD cannot be negative: a bootstrap interval
        assert row[1] == "2" and row[2] == "2 finished" and row[3] == "20"
        assert float(row[header.index("swd64↓ mean")]) == pytest.approx(np.mean(values), rel=1e-3)
        low, high = map(float, row[header.index("swd64↓ 95% CI")].strip("[]").split(","))
        assert (low, high) == pytest.approx((iv.low, iv.high), rel=1e-3)
        assert float(row[header.index("swd64↓ best")]) == pytest.approx(min(values), rel=1e-3)  # SWD: lower is better
        assert float(row[header.index("swd64↓ worst")]) == pytest.approx(max(values), rel=1e-3)
    from PIL import Image

    with Image.open(tmp_path / "g.png") as im:  # the median run's last grid of each group, side by side
        assert im.width > 2 * 256


def test_baseline_adds_the_difference_its_interval_and_welchs_p(sweep, tmp_path):
    out, _ = sweep
    code, text, err = gankit("compare", out, "--baseline", "loss.name=bce", "--out", tmp_path / "c.png")
    assert code == 0, err
    assert "baseline: loss.name=bce" in text
    row = columns(text, "loss.name=hinge  swd")
    bce, hinge = final_values(out, "bce"), final_values(out, "hinge")
    assert float(row[2]) == pytest.approx(np.mean(hinge) - np.mean(bce), rel=1e-3, abs=1e-3)
    assert float(row[4]) == pytest.approx(welch(bce, hinge)[2], rel=1e-2)
    overlap = mean_interval(bce).overlaps(mean_interval(hinge))
    assert ("not distinguishable at n=2" in row[5] or "weak evidence" in row[5]) == overlap
    # --ci bootstrap is seeded: the same seed, the same numbers
    runs = [gankit("compare", out, "--baseline", "loss.name=bce", "--ci", "bootstrap", "--seed", "3",
                   "--out", tmp_path / "c.png")[1] for _ in range(2)]
    assert runs[0] == runs[1] and "bootstrap" in runs[0]


def test_compare_a_folder_of_the_sweeps_runs_with_group_by(sweep, tmp_path):
    out, _ = sweep
    code, text, _ = gankit("compare", out / "runs", "--group-by", "loss.name", "--out", tmp_path / "c.png")
    assert code == 0 and "4 runs in 2 groups by loss.name" in text
    code, text, _ = gankit("compare", out, "--group-by", "none", "--out", tmp_path / "c.png")
    assert code == 0 and text.splitlines()[0].split()[:3] == ["run", "recipe", "status"]
    assert text.count("finished") == 4


@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium not installed (apt-get install -y chromium)")
def test_report_of_a_sweep_renders_in_chromium(sweep, tmp_path):
    from test_compare_report import chromium

    out, _ = sweep
    code, text, err = gankit("report", out, "--baseline", "loss.name=bce")
    assert code == 0, err
    page = out / "report.html"
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", html) and not re.search(r"https?://", html)
    assert "Against the baseline loss.name=bce" in html and "Welch" in html and "swd64↓ 95% CI" in html
    assert html.count("class='grid'") == 2  # the last grid of each group's median run
    dom = chromium("--dump-dom", page.resolve().as_uri(), tmp=tmp_path / "profile").stdout
    imgs = re.findall(r"<img [^>]*>", dom)
    assert len(imgs) >= 3 and f'data-images-ok="{len(imgs)}/{len(imgs)}"' in dom
    assert all('data-loaded="1"' in tag for tag in imgs)


# -- mistakes: reported before anything runs ------------------------------------------------------------
def test_the_whole_sweep_is_validated_first_every_problem_at_once(tmp_path):
    recipe = sweep_recipe(tmp_path)
    code, _, err = gankit("sweep", recipe, "--grid", "loss.name=bce,hingee", "--grid", "train.stpes=1,2",
                          "--seeds", "2", "train.steps=abc", "--out", tmp_path / "S")
    assert code == 2 and not (tmp_path / "S").exists()
    assert "(8 runs) has 4 problems" in err
    assert "train.steps: Input should be a valid integer" in err and "[every run]" in err
    assert "did you mean 'train.steps'?" in err and "did you mean 'hinge'?" in err
    assert "[4 of 8 runs: 004_hingee_1_seed1" in err


@pytest.mark.parametrize("args,message", [
    (["--grid", "seed=1,2"], "use --seeds N or --seed-list"),
    (["--grid", "loss.name=bce,hinge", "loss.name=wgan"], "both a plain override"),
    (["--seeds", "2", "--seed-list", "1,2"], "not both"),
    (["--grid", "loss.name"], "KEY=V1,V2"),
    (["out_dir=x"], "gankit sweep sets out_dir itself"),
    (["--jobs", "0"], "at least 1"),
])
def test_argument_mistakes(tmp_path, args, message):
    code, _, err = gankit("sweep", sweep_recipe(tmp_path), *args, "--out", tmp_path / "S")
    assert code == 2 and message in err, err


def test_an_existing_sweep_is_not_overwritten(sweep, tmp_path):
    out, _ = sweep
    code, _, err = gankit("sweep", sweep_recipe(tmp_path), "--out", out)
    assert code == 2 and f"continue it with: gankit sweep --resume {out}" in err


def test_a_failed_run_is_recorded_with_its_error_and_the_sweep_goes_on(tmp_path):
    recipe = sweep_recipe(tmp_path)
    code, text, err = gankit("sweep", recipe, "--grid", "data.batch_size=16,5000", "data.drop_last=true",
                             "train.steps=5", "--jobs", "2", "--out", tmp_path / "S", timeout=120)
    assert code == 1, text + err  # some runs failed
    assert "1 finished, 1 failed, 0 interrupted" in text
    state = yaml.safe_load((tmp_path / "S" / "sweep.yaml").read_text())
    ok, bad = state["runs"]
    assert ok["status"] == "finished" and bad["status"] == "failed" and bad["exit_code"] == 2
    assert bad["error"].startswith("error:") and "larger than the dataset" in bad["error"]
    assert "larger than the dataset" in (tmp_path / "S" / "logs" / f"{bad['name']}.log").read_text()
    code, text, _ = gankit("compare", tmp_path / "S", "--out", tmp_path / "c.png")
    assert code == 0 and "has no run directory (failed: error:" in text  # named, not silently dropped
    shutil.rmtree(tmp_path / "S")


def test_threads_and_gpus_are_split_between_jobs(monkeypatch):
    from gankit.runs import sweep_exec

    monkeypatch.setattr(sweep_exec, "available_cores", lambda: 16)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert [sweep_exec.job_threads(k) for k in (1, 3, 4, 32)] == [16, 5, 4, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the sweep's own limit is kept
    assert sweep_exec.job_threads(2) == 2
    monkeypatch.setattr(sweep_exec, "gpu_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert sweep_exec.gpu_devices() == ["0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")  # only the GPUs the sweep was given, one per job slot
    assert sweep_exec.gpu_devices() == ["4", "6"]
    assert sweep_exec.last_error("step 3\nTraceback (most recent call last):\n  x\nValueError: boom\n") == \
        "ValueError: boom"
    assert sweep_exec.last_error("error: a\nmore\n") == "error: a"
