"""The wandb logger, checked by reading offline wandb runs with wandb's own reader.

wandb 0.31 has no Python reader for ``.wandb`` transaction logs; its own
reader is ``wandb leet inspect --json`` (records, one JSON object a line) and
``--summary --json`` (the run's state, config and summary), run through the
installed wandb-core. Tiny real runs train a 16x16 DCGAN for a few steps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("wandb")

from gankit import cli  # noqa: E402
from gankit.loggers.factory import make_loggers  # noqa: E402
from gankit.rundir.metrics import read_metrics  # noqa: E402
from gankit.recipe.schema import Recipe  # noqa: E402

pytestmark = pytest.mark.slow  # the slow tier: wandb runs, offline


# -- reading offline runs with wandb's reader ------------------------------------------
def wandb_files(run_dir: Path) -> list[Path]:
    return sorted(Path(run_dir, "wandb").glob("offline-run-*/run-*.wandb"))


def inspect(path: Path, summary: bool = False):
    cmd = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", *(["--summary"] if summary else []), str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    return json.loads(out) if summary else [json.loads(line) for line in out.splitlines() if line.strip()]


def records(path: Path, kind: str) -> list[dict]:
    return [r[kind] for r in inspect(path) if r["type"] == kind]


def history(path: Path) -> list[dict]:
    return [{**r["item"], "_gankit_step": r["step"]["num"]} for r in records(path, "history")]


# -- set-up -------------------------------------------------------------------------------
@pytest.fixture
def wandb_env(monkeypatch, tmp_path):
    """wandb on, offline, with its config/cache/artifact staging inside tmp_path."""
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    for var, sub in (("WANDB_CONFIG_DIR", "config"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data")):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / sub))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("GANKIT_OFFLINE", "1")  # evaluation: no attempt to download Inception weights
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "gankit-cache"))


@pytest.fixture
def offline(tiny, write_recipe, wandb_env):
    """The tiny recipe, logging to an offline wandb run tagged for the tests."""
    tiny["log"]["wandb"] = {"mode": "offline", "tags": ["tiny", "test"], "notes": "a test run"}
    return write_recipe(tiny)


def run_dirs(tiny) -> set[Path]:
    return {p for p in Path(tiny["out_dir"]).glob("*/*") if p.is_dir()}


def train(tiny, recipe: Path, *overrides: str) -> Path:
    before = run_dirs(tiny)
    assert cli.main(["run", str(recipe), *overrides]) == 0
    (new,) = run_dirs(tiny) - before
    return new


# -- a tiny real run ----------------------------------------------------------------------------
EVAL = ("eval.metrics=[fid,swd]", "eval.every=2", "eval.num_fake=16", "eval.num_real=16",
        "eval.on_missing_weights=skip")  # SWD needs no weights; FID runs where Inception weights are


def test_offline_run_holds_config_history_images_metrics_and_exit(tiny, offline):
    run_dir = train(tiny, offline, *EVAL)
    (wb,) = wandb_files(run_dir)
    stored_id = (run_dir / "wandb_run_id").read_text().strip()
    assert wb.name == f"run-{stored_id}.wandb"

    (run,) = records(wb, "run")
    assert run["display_name"] == run_dir.name  # wandb run name = gankit run id
    assert run["run_group"] == "tiny" and run["job_type"] == "train" and run["project"] == "gankit"
    assert run["tags"] == ["tiny", "test"] and run["notes"] == "a test run"

    summary = inspect(wb, summary=True)
    assert summary["state"] == "finished" and summary["exit_code"] == 0
    config = summary["config"]  # nested, so wandb's run table filters on loss.name, optim.g.lr, ...
    assert config["loss"]["name"] == "bce"
    assert config["optim"]["g"]["lr"] == pytest.approx(2e-4)
    assert config["generator"] == {"name": "dcgan", "nz": 8, "ngf": 8}
    assert config["gankit"]["version"] and config["gankit"]["torch"] and config["gankit"]["device"] == "cpu"
    assert "dcgan" in json.dumps(config["gankit"]["plugins"])

    rows = history(wb)
    keys = set().union(*rows)
    for key in ("loss_d", "loss_g", "d_real", "d_fake", "img_per_s", "lr_g", "lr_d", "grad_norm_g",
                "grad_norm_d", "epoch"):
        assert f"train/{key}" in keys, key
    assert sorted(r["_step"] for r in rows if "train/loss_d" in r) == [1, 2, 3, 4]
    local = {r["step"]: r for r in read_metrics(run_dir) if r["kind"] == "train"}
    for row in rows:
        if "train/loss_d" in row:
            assert row["train/loss_d"] == pytest.approx(local[row["_step"]]["loss_d"])
    images = [r for r in rows if r.get("samples._type") == "image-file"]
    assert [r["_step"] for r in images] == [2, 4]  # every fixed-noise grid
    media = wb.parent / "files" / images[-1]["samples.path"]
    assert media.is_file() and media.stat().st_size > 0
    assert summary["summary"]["gankit_status"] == "finished"

    # Evaluations: values in history, best in the summary, provenance in config.
    local_eval = [r for r in read_metrics(run_dir) if r["kind"] == "eval"]
    swd = [(r["_step"], r["eval/swd"]) for r in rows if "eval/swd" in r]
    assert swd == [(r["step"], pytest.approx(r["value"])) for r in local_eval if r["metric"] == "swd"]
    assert [s for s, _ in swd] == [2, 4]
    s = summary["summary"]
    assert s["best/swd"] == pytest.approx(min(v for _, v in swd))
    assert config["provenance"]["swd"]["feature_extractor"] == "laplacian_pyramid_patches"
    assert config["provenance"]["swd"]["num_fake"] == 16
    if any(r["metric"] == "fid" for r in local_eval):  # Inception weights were on this machine
        assert s["best/fid"] == pytest.approx(min(r["value"] for r in local_eval if r["metric"] == "fid"))
    else:  # skipped, and the run table says why
        assert any("fid" in n and "skip" in n for n in s["notices"]), s.get("notices")


def test_resume_continues_the_same_wandb_run(tiny, offline):
    run_dir = train(tiny, offline, "train.steps=2")
    first_id = (run_dir / "wandb_run_id").read_text().strip()
    assert cli.main(["run", "--resume", str(run_dir), "train.steps=4"]) == 0
    assert (run_dir / "wandb_run_id").read_text().strip() == first_id
    files = wandb_files(run_dir)  # offline: one transaction log per process, same run id
    assert [f.name for f in files] == [f"run-{first_id}.wandb"] * 2
    steps = [sorted(r["_step"] for r in history(f) if "train/loss_d" in r) for f in files]
    assert sorted(steps) == [[1, 2], [3, 4]]
    assert all(inspect(f, summary=True)["state"] == "finished" for f in files)


def _patched_step(monkeypatch, on_second_call):
    from gankit.training.step import GANStep

    real, calls = GANStep.__call__, []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            on_second_call()
        return real(*args, **kwargs)

    monkeypatch.setattr(GANStep, "__call__", step)


def test_a_run_that_raises_marks_its_wandb_run_failed(tiny, offline, monkeypatch):
    def boom():
        raise RuntimeError("boom in step 2")

    _patched_step(monkeypatch, boom)
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["run", str(offline)])
    (run_dir,) = run_dirs(tiny)
    (wb,) = wandb_files(run_dir)
    summary = inspect(wb, summary=True)
    assert summary["state"] == "failed" and summary["exit_code"] != 0
    assert summary["summary"]["gankit_status"] == "failed"
    last = read_metrics(run_dir)[-1]
    assert (last["kind"], last["status"]) == ("end", "failed")


def test_sigterm_finishes_the_wandb_run_as_interrupted(tiny, offline, monkeypatch):
    _patched_step(monkeypatch, lambda: os.kill(os.getpid(), signal.SIGTERM))
    assert cli.main(["run", str(offline)]) == 128 + signal.SIGTERM
    (run_dir,) = run_dirs(tiny)
    (wb,) = wandb_files(run_dir)
    summary = inspect(wb, summary=True)
    assert summary["exit_code"] != 0 and summary["state"] == "failed"
    assert summary["summary"]["gankit_status"] == "interrupted"


# -- the logger on a hand-made run directory -------------------------------------------------
def make_recipe(**wandb) -> Recipe:
    return Recipe.model_validate({"name": "syn", "generator": {"name": "dcgan"}, "discriminator": {"name": "dcgan"},
                                  "log": {"wandb": {"mode": "offline", **wandb}}})


def test_metrics_best_fid_provenance_and_skipped_notice(tmp_path, wandb_env):
    run_dir = tmp_path / "syn" / "r1"
    run_dir.mkdir(parents=True)
    # A resumed run: its earlier evaluations are in the local record only.
    earlier = {"kind": "eval", "step": 10, "metric": "fid", "value": 40.0}
    (run_dir / "metrics.jsonl").write_text(json.dumps(earlier) + "\n")
    group = make_loggers(make_recipe(), run_dir)
    prov = {"feature_extractor": "inception-v3-compat", "num_samples": 500, "reference": "digits:train"}
    group.log_metrics(20, [{"metric": "fid", "value": 55.0, "std": 1.5, **prov},
                           {"metric": "is", "value": 2.0, "std": 0.1, **prov}])
    group.log_metrics(30, [{"metric": "fid", "value": 45.0, **prov}, {"metric": "is", "value": 3.0, **prov},
                           {"metric": "kid", "value": None, "skipped": "needs 1000 samples"}])
    group.finish("finished")

    (wb,) = wandb_files(run_dir)
    summary = inspect(wb, summary=True)
    s = summary["summary"]
    assert s["best/fid"] == 40.0 and s["best/fid_step"] == 10  # lower is better, earlier run counted
    assert s["best/is"] == 3.0 and s["best/is_step"] == 30  # higher is better
    assert s["eval/kid_skipped"] == "needs 1000 samples"
    assert summary["config"]["provenance"]["fid"] == prov  # filterable: how FID was computed
    rows = history(wb)
    assert [(r["_step"], r["eval/fid"]) for r in rows if "eval/fid" in r] == [(20, 55.0), (30, 45.0)]
    assert any(r.get("eval/fid_std") == 1.5 for r in rows)
    assert not any("eval/kid" in r for r in rows)


def test_final_checkpoint_as_artifact(tmp_path, wandb_env):
    run_dir = tmp_path / "syn" / "r1"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"weights")
    group = make_loggers(make_recipe(log_checkpoint=True), run_dir)
    group.log_scalars(1, {"loss_d": 1.0})
    group.finish("finished")
    (artifact,) = records(wandb_files(run_dir)[0], "artifact")
    assert artifact["type"] == "model" and "latest" in artifact["aliases"]
    assert [c["path"] for c in artifact["manifest"]["contents"]] == ["last.pt"]


def test_no_artifact_unless_asked(tmp_path, wandb_env):
    run_dir = tmp_path / "syn" / "r1"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"weights")
    group = make_loggers(make_recipe(), run_dir)
    group.finish("finished")
    assert records(wandb_files(run_dir)[0], "artifact") == []


def test_recipe_schema_documents_wandb_defaults():
    cfg = make_recipe().log.wandb
    assert (cfg.project, cfg.entity, cfg.tags, cfg.log_checkpoint) == ("gankit", None, [], False)
    assert Recipe.model_validate(yaml.safe_load("name: x\ngenerator: {name: g}\ndiscriminator: {name: d}\n")
                                 ).log.wandb.mode == "auto"


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_still_finishes_the_wandb_run(tiny, offline):
    """Ctrl-C reaches every process of the terminal's group, wandb's service included."""
    from helpers import REPO

    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [sys.executable, "-m", "gankit", "run", str(offline), "train.steps=100000", "log.progress=lines"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # wait until training is under way
            if line.startswith("[3/"):
                break
        os.killpg(proc.pid, signal.SIGINT)
        proc.stderr.read()
        assert proc.wait(timeout=120) == 128 + signal.SIGINT
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    (run_dir,) = run_dirs(tiny)
    summary = inspect(wandb_files(run_dir)[0], summary=True)
    assert summary["exit_code"] == 255 and summary["summary"]["gankit_status"] == "interrupted"
