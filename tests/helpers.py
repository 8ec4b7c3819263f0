"""Helpers the tests import: the tiny recipe, running the CLI, finding run directories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

TINY = {
    "name": "tiny",
    "seed": 1,
    "out_dir": "runs",  # replaced by a tmp path in the fixture
    "device": "cpu",
    "data": {"name": "digits", "image_size": 16, "channels": 1, "batch_size": 16, "workers": 0},
    "generator": {"name": "dcgan", "nz": 8, "ngf": 8},
    "discriminator": {"name": "dcgan", "ndf": 8},
    "loss": {"name": "bce"},
    "train": {"steps": 4, "sample_every": 2, "num_samples": 16, "checkpoint_every": 2, "log_every": 1},
    "log": {"progress": "none"},
}


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300):
    """``gankit ARGS`` in a subprocess (what a user types); returns the CompletedProcess."""
    full_env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gankit", *args], cwd=cwd or REPO, env=full_env,
        capture_output=True, text=True, timeout=timeout,
    )


def only_run_dir(out_dir: Path) -> Path:
    runs = [p for p in Path(out_dir).glob("*/*") if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]
