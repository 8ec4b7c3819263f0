"""A run keeps its own copy of the recipe's .py plugins: resume, sample, eval and load_generator work from anywhere."""

from __future__ import annotations

import os

import pytest
import yaml

import gankit
from helpers import gankit as cli, only_run_dir, run_cli

pytestmark = pytest.mark.slow  # the slow tier: a run and its plugin file through several processes

PARTS = '''
import torch
from torch import nn
import gankit


class MLPGenerator(nn.Module):
    def __init__(self, nz: int = 8, hidden: int = 32, channels: int = 1, image_size: int = 16):
        super().__init__()
        self.nz, self.shape = nz, (channels, image_size, image_size)
        self.net = nn.Sequential(nn.Linear(nz, hidden), nn.ReLU(), nn.Linear(hidden, channels * image_size**2), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(-1, *self.shape)


@gankit.hookimpl
def gankit_register(registry):
    registry("generators").register("mlp", MLPGenerator)
'''


def test_a_file_plugin_travels_with_its_run(tiny, tmp_path):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "parts.py").write_text(PARTS)
    tiny.update(plugins=["parts.py"], out_dir=str(tmp_path / "runs"))
    tiny["generator"] = {"name": "mlp", "hidden": 32}
    (project / "recipe.yaml").write_text(yaml.safe_dump(tiny))
    first = run_cli("run", "recipe.yaml", cwd=project)
    assert first.returncode == 0, first.stderr
    run_dir = only_run_dir(tmp_path / "runs")
    copy = run_dir / "plugins" / "parts.py"
    assert copy.read_text() == PARTS
    recorded = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    assert recorded["plugins"] == ["plugins/parts.py"]
    (files,) = recorded["gankit"]["plugin_files"]
    assert files["spec"] == "parts.py" and files["original"] == str(project / "parts.py") and len(files["sha256"]) == 64

    # From another folder, without the original: every command uses the run's copy.
    os.rename(project / "parts.py", project / "parts.py.moved")
    resumed = run_cli("run", "--resume", str(run_dir), "train.steps=6", cwd=elsewhere)
    assert resumed.returncode == 0, resumed.stderr
    sampled = run_cli("sample", str(run_dir), "--num", "4", "--out", str(tmp_path / "imgs"), cwd=elsewhere)
    assert sampled.returncode == 0, sampled.stderr
    measured = run_cli("eval", str(run_dir), "--metrics", "swd", "--num-fake", "20", cwd=elsewhere)
    assert measured.returncode == 0, measured.stderr
    cwd = os.getcwd()
    try:
        os.chdir(elsewhere)
        G = gankit.load_generator(run_dir)
        assert type(G).__name__ == "MLPGenerator" and not G.training
        assert gankit.generate(G, 3, seed=1).shape == (3, 1, 16, 16)
    finally:
        os.chdir(cwd)

    # The original changed since: the run's copy is its truth, and gankit says so.
    (project / "parts.py").write_text(PARTS.replace("hidden: int = 32", "hidden: int = 64"))
    code, _, err = cli("sample", str(run_dir), "--num", "2", "--out", str(tmp_path / "imgs2"))
    assert code == 0, err
    assert "warning: plugin parts.py changed since this run copied it" in err and str(copy) in err
