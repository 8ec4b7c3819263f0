"""A sweep stopped and resumed, a sweep logging to wandb (offline), and the wandb sweep file run as an agent would.

The sweep runs as a user's would, in a subprocess; Ctrl-C is SIGINT to the
sweep process only (its runs live in their own sessions), which forwards it
to each running job.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from gankit.rundir.record import load_run
from helpers import REPO, gankit, run_cli
from test_sweep import sweep_recipe

pytestmark = pytest.mark.slow  # the slow tier: sweeps of several runs, stopped and resumed


def state(out: Path) -> dict:
    return yaml.safe_load((out / "sweep.yaml").read_text())


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_stopped_sweep_resumes_without_rerunning_finished_runs(tmp_path):
    out = tmp_path / "S"
    cmd = [sys.executable, "-m", "gankit", "sweep", str(sweep_recipe(tmp_path)), "--grid", "train.steps=10,600",
           "train.checkpoint_every=50", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def long_run_checkpointed() -> bool:
            if not (out / "sweep.yaml").is_file():
                return False
            first, second = state(out)["runs"]
            return (first["status"] == "finished" and second["run_dir"] is not None
                    and (out / second["run_dir"] / "checkpoints" / "last.pt").is_file())

        wait_for(long_run_checkpointed, 120, "the second run's first checkpoint")
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        stdout, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stdout
    assert "1 finished, 0 failed, 1 interrupted" in stdout and f"gankit sweep --resume {out}" in stdout
    first, second = state(out)["runs"]
    assert second["status"] == "interrupted" and second["exit_code"] == 130
    interrupted_dir = out / second["run_dir"]
    assert load_run(interrupted_dir).status == "interrupted" and load_run(interrupted_dir).digest().steps < 600
    finished_dir = out / first["run_dir"]
    before = (finished_dir / "metrics.jsonl").read_bytes()

    code, text, err = gankit("sweep", "--resume", out, timeout=180)
    assert code == 0, text + err
    assert "1 of 2 runs to do" in text and f"resumed from {interrupted_dir}" in text
    assert "2 finished, 0 failed, 0 interrupted" in text
    first, second = state(out)["runs"]
    assert out / first["run_dir"] == finished_dir and first["attempts"] == 1  # not rerun
    assert (finished_dir / "metrics.jsonl").read_bytes() == before
    assert out / second["run_dir"] == interrupted_dir and second["attempts"] == 2  # the same run, continued
    run = load_run(interrupted_dir)
    assert run.status == "finished" and run.digest().steps == 600
    assert any(e.get("event") == "resumed" for e in run.digest().events)
    assert "gankit run --resume" in (out / "logs" / f"{second['name']}.log").read_text()
    assert len(list((out / "runs").glob("*/*/*"))) == 2  # no extra run directory
    code, _, err = gankit("sweep", "--resume", out, "--seeds", "3")
    assert code == 2 and "drop --seeds" in err


def wandb_records(run_dir: Path) -> tuple[dict, dict]:
    """(the run record, the summary with its config) of a run's offline wandb file, by wandb's own reader."""
    (path,) = Path(run_dir, "wandb").glob("offline-run-*/run-*.wandb")
    base = [sys.executable, "-m", "wandb", "leet", "inspect", "--json"]
    records = subprocess.run(base + [str(path)], capture_output=True, text=True, timeout=120, check=True).stdout
    run = next(json.loads(line)["run"] for line in records.splitlines() if json.loads(line)["type"] == "run")
    summary = subprocess.run(base + ["--summary", str(path)], capture_output=True, text=True, timeout=120,
                             check=True).stdout
    return run, json.loads(summary)


def test_sweep_with_the_default_wandb_mode_logs_each_run_in_its_group(tmp_path):
    pytest.importorskip("wandb")
    recipe = yaml.safe_load(sweep_recipe(tmp_path).read_text())
    recipe["log"] = {"progress": "none"}  # log.wandb.mode: auto, the default
    path = tmp_path / "auto.yaml"
    path.write_text(yaml.safe_dump(recipe))
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(home), OMP_NUM_THREADS="1", GANKIT_OFFLINE="1", GANKIT_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "gankit", "sweep", str(path), "--seeds", "2", "--jobs", "2",
                           "--out", str(tmp_path / "W"), "--name", "wsweep"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for job, seed in zip(state(tmp_path / "W")["runs"], (1, 2)):
        run_dir = tmp_path / "W" / job["run_dir"]
        assert "offline run in" in (tmp_path / "W" / "logs" / f"{job['name']}.log").read_text()  # not logged in
        run, summary = wandb_records(run_dir)
        assert run["run_group"] == "wsweep" and run["display_name"] == run_dir.name
        assert summary["config"]["sweep"] == "wsweep" and summary["config"]["seed"] == seed
        assert summary["state"] == "finished"


def agent_command(config: dict, params: dict) -> list[str]:
    """The command wandb's agent runs for one grid point: wandb's own argument formats, its macro expansion
    (wandb/wandb_agent.py, Agent._command_run)."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    sweep_vars = sweep_utils.create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    command = []
    for c in sweep_utils.create_sweep_command(config["command"]):
        c = str(c)
        if c.startswith("${") and c.endswith("}"):
            command += sweep_vars.get(c[2:-1]) or []
        else:
            command += [c]
    return command


def test_wandb_sweep_file_runs_as_the_agent_would_run_it(tmp_path):
    pytest.importorskip("wandb")
    from wandb.sdk.launch.sweeps.utils import load_sweep_config

    recipe = sweep_recipe(tmp_path)
    file = tmp_path / "wandb_sweep.yaml"
    code, text, err = gankit("sweep", recipe, "--grid", "loss.name=bce,hinge", "--grid", "optim.g.lr=1e-4,3e-4",
                             "--grid", "optim.g.betas=[0.5,0.9],[0.0,0.99]", "--seed-list", "5,6",
                             "train.steps=3", "--name", "wb", "--wandb-sweep", file)
    assert code == 0, err
    assert "16 runs" in text and not (tmp_path / "runs").exists()  # nothing ran
    config = load_sweep_config(str(file))  # wandb's reader
    assert config["method"] == "grid" and config["name"] == "wb"
    assert config["parameters"] == {"loss.name": {"values": ["bce", "hinge"]},
                                    "optim.g.lr": {"values": ["1e-4", "3e-4"]},  # str(1e-4) would not read back
                                    "optim.g.betas": {"values": [[0.5, 0.9], [0.0, 0.99]]},
                                    "seed": {"values": [5, 6]}}
    assert config["command"][:3] == ["gankit", "run", str(recipe)] and config["command"][-1] == "${args_no_hyphens}"
    grid = list(itertools.product(*(p["values"] for p in config["parameters"].values())))
    assert len(grid) == 16
    from gankit.recipe import load_recipe

    for point in grid:  # every command the agent will run parses and validates
        params = dict(zip(config["parameters"], point))
        command = agent_command(config, params)
        assert command[3:5] == ["train.steps=3", 'sweep="wb"'] and f"seed={params['seed']}" in command
        r = load_recipe(command[2], command[3:])
        assert (r.loss.name, r.seed, r.sweep, r.log.wandb.group) == (params["loss.name"], params["seed"], "wb", "wb")
        assert r.optim.g.lr == float(params["optim.g.lr"]) and list(r.optim.g.args["betas"]) == params["optim.g.betas"]
    # and one of them trains: the agent's command line, with `gankit` as this interpreter's module
    params = dict(zip(config["parameters"], grid[-1]))
    command = agent_command(config, params)
    proc = run_cli(*command[1:], f"out_dir={tmp_path / 'agent'}", env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (tmp_path / "agent").glob("*/*")
    run = load_run(run_dir)
    assert run.status == "finished" and run.digest().steps == 3
    assert (run.recipe["loss"]["name"], run.recipe["optim"]["g"]["lr"], run.recipe["seed"]) == ("hinge", 3e-4, 6)
    assert run.recipe["optim"]["g"]["betas"] == [0.0, 0.99] and run.recipe["sweep"] == "wb"
