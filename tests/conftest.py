"""Shared fixtures: a tiny recipe that trains in a fraction of a second, hermetic plugins."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from helpers import TINY

# wandb costs seconds per run; tests that check wandb turn it back on themselves.
os.environ["WANDB_MODE"] = "disabled"


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


