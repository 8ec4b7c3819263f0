"""The family recipes measure FID as their papers do: fid50k_full, 50,000 generated images against the
whole training set (issue 22: ``r3gan_ffhq64`` compared 50,000 real images and called it fid50k_full)."""

from __future__ import annotations

import pytest
import yaml

from helpers import REPO

# The training sets' sizes the papers' fid50k_full compares against: CIFAR-10's training split; the face
# recipes' image folder is CelebA's aligned faces (a larger num_real takes all there are, and says so).
TRAIN_SIZES = {"cifar10": 50_000, "imagefolder": 202_599}
FAMILY_RECIPES = sorted(p for p in (REPO / "recipes").glob("*.yaml")
                        if p.stem.startswith(("stylegan2_", "r3gan_")) and "tiny" not in p.stem)


@pytest.mark.parametrize("path", FAMILY_RECIPES, ids=lambda p: p.stem)
def test_family_recipes_compare_50k_generated_with_the_whole_training_set(path):
    recipe = yaml.safe_load(path.read_text())
    ev, data = recipe["eval"], recipe["data"]
    assert "fid" in ev["metrics"] and ev["num_fake"] == 50_000, path.name
    assert ev["num_real"] >= TRAIN_SIZES[data["name"]], f"{path.name}: num_real {ev['num_real']} is not the whole set"
    assert "fid50k_full" in path.read_text(), f"{path.name} should say its budget is the paper's fid50k_full"


def test_there_are_family_recipes_to_check():
    assert len(FAMILY_RECIPES) >= 6, [p.stem for p in FAMILY_RECIPES]
