"""Every shipped recipe, run the way a new user runs it: ``gankit run recipes/X.yaml`` and nothing else.

Only the data root (and split) is pointed at ``../shared/data``, ``train.steps``
is small (and, for the paper-scale recipes, the batch and sample grid) and
``out_dir`` is a temporary folder. Everything else is the
recipe's own: its ``data.workers`` (DataLoader worker processes), wandb in
``auto`` mode with a fresh ``HOME`` and ``WANDB_MODE`` unset (wandb's own
path: offline when not logged in), and its ``eval`` section (without
Inception weights here: fid/is/kid skipped, the fill-in command named, SWD
measured; fewer images per evaluation for the recipes sized for FID).
Last round every test passed with ``data.workers=0`` and wandb disabled,
while this very command failed for users.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO, SHARED_DATA, only_run_dir

pytestmark = pytest.mark.slow  # the slow tier: every shipped recipe, as written, in a subprocess

# Trained in tests/test_learning.py, as written and to a real FID: not trained a second time here.
TRAINED_BY_LEARNING = {"quickstart", "stylegan2_tiny", "r3gan_tiny", "dcgan_celeba_cpu", "cond_mnist"}
RECIPES = sorted(p for p in (REPO / "recipes").glob("*.yaml") if p.stem not in TRAINED_BY_LEARNING)
# Recipes whose paper-scale step (batch 64-512 of 20M-100M-parameter networks) takes a minute on a CPU:
# they run here one step of a small batch with a small sample grid, their defaults otherwise as written.
# Every other recipe runs as written.
PAPER_SCALE = {"sngan_cifar10": 8, "stylegan2_cifar10": 4, "stylegan2_cifar10_cond": 4, "stylegan2_celeba64": 4,
               "r3gan_cifar10": 4, "r3gan_cifar10_cond": 4, "r3gan_ffhq64": 4}


def length_overrides(stem: str) -> tuple[list[str], int]:
    """The overrides that shorten recipe ``stem``'s run here, and the steps it then trains."""
    if stem in PAPER_SCALE:
        return [f"data.batch_size={PAPER_SCALE[stem]}", "train.num_samples=4", "train.steps=1"], 1
    return ["train.steps=2"], 2


def eval_overrides(recipe: dict) -> list[str]:
    """Fewer images per evaluation for the recipes sized for FID (10,000-50,000): offline, SWD stands in for
    FID over eval.num_fake generated images, which at those counts would take an hour on a CPU."""
    section = recipe.get("eval") or {}
    if max(section.get("num_fake", 10_000), section.get("num_real", 10_000)) <= 2000:
        return []  # the tiny recipes measure as written
    return ["eval.num_fake=64", "eval.num_real=64"]


def data_overrides(recipe: dict) -> list[str]:
    """data.root (and data.split) pointed at ../shared/data for the recipe's dataset."""
    name = recipe.get("data", {}).get("name", "digits")
    if name in ("imagefolder", "celeba"):
        return [f"data.root={SHARED_DATA / 'celeba_sample'}"]
    if name == "mnist":
        return [f"data.root={SHARED_DATA}", "data.split=test"]  # the shared copy holds the test split
    if name == "cifar10":
        return [f"data.root={SHARED_DATA / 'cifar10_test'}"]
    return []


def as_a_user(args: list[str], tmp_path: Path, cwd: Path = REPO, extra_env: dict[str, str] | None = None,
              timeout: float = 900) -> subprocess.CompletedProcess:
    """``gankit ARGS`` in a subprocess with a fresh HOME and wandb left to itself (plus ``extra_env``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "GANKIT_", "TORCH_HOME"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), OMP_WAIT_POLICY="PASSIVE", **(extra_env or {}))
    return subprocess.run([sys.executable, "-m", "gankit", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def check_run(result: subprocess.CompletedProcess, out: Path, steps: int) -> Path:
    assert result.returncode == 0, result.stderr[-4000:]
    run_dir = only_run_dir(out)
    assert "run finished:" in result.stderr and run_dir.name in result.stderr
    assert "wandb: offline run in" in result.stderr  # wandb's auto mode, not logged in: offline, said once
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["kind"] == "end" and rows[-1]["status"] == "finished"
    assert max(r["step"] for r in rows if r["kind"] == "train") == steps
    return run_dir


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_shipped_recipe_runs_as_written(path, tmp_path):
    recipe = yaml.safe_load(path.read_text())
    out = tmp_path / "runs"
    shorter, steps = length_overrides(path.stem)
    result = as_a_user(["run", str(path.relative_to(REPO)), *data_overrides(recipe), *shorter, *eval_overrides(recipe),
                        f"out_dir={out}"], tmp_path)
    run_dir = check_run(result, out, steps)
    assert (run_dir / "samples" / f"step_{steps:07d}.png").is_file()
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    resolved = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    names = [m if isinstance(m, str) else m["name"] for m in resolved["eval"]["metrics"]]
    assert "fid" in names, "every shipped recipe measures FID"
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    skipped = [e for e in events if e.get("event") == "metrics_skipped"]
    assert skipped and "fid" in skipped[0]["metrics"]  # no Inception weights on this machine
    assert f"gankit eval {run_dir} --log" in skipped[0]["fill_in"] and skipped[0]["fill_in"] in result.stderr
    measured = {e["metric"] for e in events if e.get("kind") == "eval"}
    assert "swd" in measured, "offline, every shipped recipe measures at least one metric"


PLUGIN = '''
"""A user's plugin file: a dataset of its own (its items travel to the worker processes pickled)."""
import torch
import gankit
from torch.utils.data import Dataset



class Stripes(Dataset):
    def __init__(self, image_size: int = 16, channels: int = 1, count: int = 96):
        self.image_size, self.channels, self.count = image_size, channels, count

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        x = torch.linspace(-1, 1, self.image_size).roll(i)
        return x.expand(self.channels, self.image_size, self.image_size).clone(), -1


@gankit.hookimpl
def gankit_register(registry):
    registry("datasets").register("stripes", Stripes)
'''


def test_worker_processes_and_a_plugin_file_as_written(tmp_path):
    """data.workers 2 (forked after wandb started, before the fix: every image 'unreadable') and a .py plugin."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "parts.py").write_text(PLUGIN)
    recipe = yaml.safe_load((REPO / "recipes" / "quickstart.yaml").read_text())
    recipe.update(plugins=["parts.py"], out_dir="runs")
    recipe["data"] = {"name": "stripes", "image_size": 16, "channels": 1, "batch_size": 16, "workers": 2}
    recipe["train"].update(steps=12, sample_every=None, checkpoint_every=None)
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    result = as_a_user(["run", "recipe.yaml"], tmp_path, cwd=folder)
    run_dir = check_run(result, folder / "runs", 12)  # 12 steps of 6 batches: two epochs through the same workers
    assert (run_dir / "plugins" / "parts.py").read_text() == PLUGIN  # the run keeps its own copy
