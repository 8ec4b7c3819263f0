"""Shared fixtures: a tiny recipe that trains in a fraction of a second, hermetic plugins."""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

import pytest

from helpers import TINY

# wandb costs seconds per run; tests that check wandb turn it back on themselves.
os.environ["WANDB_MODE"] = "disabled"

# No test finds this machine's Inception weights by accident (`setup.sh --test` installs them, and a real FID
# costs minutes on a CPU): torch's hub cache points at an empty folder and downloads are off, for the tests'
# own processes and the `gankit` processes they start. Tests that need the real weights take the
# `real_inception_weights` fixture, which looks where a user's run would.
REAL_WEIGHTS_ENV = {k: os.environ.pop(k, None) for k in ("TORCH_HOME", "GANKIT_INCEPTION_WEIGHTS")}
os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="gankit-tests-torch-")
os.environ["GANKIT_OFFLINE"] = "1"
# Nor the DINOv2 weights (a Hugging Face hub cache, a named file), and nothing from the hub.
for key in ("GANKIT_DINOV2_WEIGHTS", "HF_HUB_CACHE", "XDG_CACHE_HOME"):
    os.environ.pop(key, None)
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="gankit-tests-hf-")
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def real_inception_weights():
    """The Inception weights a user's run on this machine would use (published network only).

    Skips with the command that gets them; in CI (CI=true) fails instead: CI must compute real FIDs.
    """
    from gankit.eval import weights
    from gankit.eval.errors import WeightsError

    def need(what: str):
        message = f"{what}: run `gankit weights fetch` (scripts/setup.sh --test does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must compute real FIDs, but {message}")
        pytest.skip(message)

    with pytest.MonkeyPatch.context() as mp:
        for key, value in REAL_WEIGHTS_ENV.items():
            mp.delenv(key, raising=False) if value is None else mp.setenv(key, value)
        try:
            found, _ = weights.locate(allow_download=False)
        except WeightsError as exc:
            need(f"no Inception weights here ({str(exc).splitlines()[0]})")
    if not found.comparable:
        need(f"{found.path} is not the published network ({found.origin})")
    return found


@pytest.fixture(autouse=True)
def fresh_plugins():
    """Each test starts from a fresh plugin host (local plugins don't leak between tests)."""
    from gankit.core.plugins import reset_host

    reset_host()
    yield
    reset_host()


@pytest.fixture
def tiny(tmp_path) -> dict:
    """A valid recipe dict for a 16x16 DCGAN on digits, 4 steps, writing under tmp_path."""
    recipe = copy.deepcopy(TINY)
    recipe["out_dir"] = str(tmp_path / "runs")
    recipe.setdefault("log", {})
    return recipe


@pytest.fixture
def write_recipe(tmp_path):
    """Write a recipe dict to a YAML file and return its path."""
    import yaml

    def write(recipe: dict, name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
        return path

    return write


