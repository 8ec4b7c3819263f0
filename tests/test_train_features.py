"""Every shipped recipe trains; d_steps, regularisers, augmentation, EMA and conditional models in the trainer."""

import copy

import pytest
import yaml
from PIL import Image

from gankit.recipe import load_recipe, validate
from gankit.rundir.checkpoint import load_checkpoint
from gankit.training.trainer import Trainer, train
from gankit.training.state import prepare_resume
from helpers import REPO, SHARED_DATA, states_equal

RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
# Where each dataset's real images sit beside the repository (CI has a copy of shared/).
DATA_ROOTS = {
    "imagefolder": SHARED_DATA / "celeba_sample",
    "celeba": SHARED_DATA / "celeba_sample",
    "mnist": SHARED_DATA,
    "cifar10": SHARED_DATA / "cifar10_test",
}


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_recipe_trains_two_steps_on_the_cpu(path, tmp_path):
    raw = yaml.safe_load(path.read_text())
    overrides = ["train.steps=2", "data.batch_size=4", "data.workers=0", f"out_dir={tmp_path}", "device=cpu",
                 "log.progress=none", "train.num_samples=4", "eval.num_real=8", "eval.num_fake=8",
                 "eval.on_missing_weights=skip"]
    name = raw["data"].get("name", "digits")
    if name in DATA_ROOTS:
        if not DATA_ROOTS[name].is_dir():
            pytest.skip(f"{DATA_ROOTS[name]} is absent")
        overrides.append(f"data.root={DATA_ROOTS[name]}")
        if name in ("mnist", "cifar10"):
            overrides.append("data.split=test")
    recipe = load_recipe(path, overrides)
    run_dir = train(recipe)
    assert load_checkpoint(run_dir)["step"] == 2
    assert (run_dir / "samples" / "step_0000002.png").is_file()


@pytest.fixture
def everything(tiny):
    """The tiny recipe with every trainer feature on."""
    tiny["data"]["batch_size"] = 512  # 4 batches an epoch: steps of 2 batches cross epochs
    tiny["train"].update(steps=5, d_steps=2, ema={"decay": 0.9, "rampup": 0.5}, sample_every=None,
                         checkpoint_every=None)
    tiny["regularizers"] = [{"name": "r1", "gamma": 1.0, "every": 2}, {"name": "gp", "weight": 1.0}]
    tiny["augment"] = {"name": "diffaugment", "policy": "color,translation,cutout"}
    tiny["loss"] = {"name": "hinge"}
    return tiny


def test_resume_is_exact_with_every_feature_on(everything):
    whole = load_checkpoint(train(validate(everything)))
    short = copy.deepcopy(everything)
    short["train"]["steps"] = 2
    half = train(validate(short))
    recipe, ck, run_dir = prepare_resume(half, ["train.steps=5"])
    Trainer(recipe, resume=ck, run_dir=run_dir, overrides=["train.steps=5"]).run()
    resumed = load_checkpoint(half)
    assert whole["step"] == resumed["step"] == 5
    assert whole["batch_in_epoch"] == resumed["batch_in_epoch"] == 2  # 10 batches: epochs 0, 1 and 2 of 4
    for key in ("generator", "discriminator", "optim_g", "optim_d", "ema", "rng"):
        assert states_equal(whole[key], resumed[key]), key


def test_d_steps_takes_a_fresh_batch_for_each_d_update(tiny):
    tiny["data"]["batch_size"] = 512
    tiny["train"].update(steps=3, d_steps=3)
    ck = load_checkpoint(train(validate(tiny)))
    assert (ck["epoch"], ck["batch_in_epoch"]) == (2, 1)  # 9 batches of 4 an epoch


def test_ema_generator_makes_the_samples(tiny):
    tiny["train"]["ema"] = {"decay": 0.5, "rampup": None}
    ck = load_checkpoint(train(validate(tiny)))
    assert ck["ema"] is not None and ck["ema"]["images_seen"] == 4 * 16
    assert not states_equal(ck["ema"]["generator"], ck["generator"])


def test_conditional_grid_has_one_row_per_class(tiny):
    tiny["generator"] = {"name": "dcgan_cond", "nz": 8, "ngf": 8, "num_classes": 10}
    tiny["discriminator"] = {"name": "dcgan_projection", "ndf": 8, "num_classes": 10}
    tiny["train"]["num_samples"] = 30  # 3 per class
    run_dir = train(validate(tiny))
    with Image.open(run_dir / "samples" / "step_0000004.png") as grid:
        # nrow = 3 images across, 10 rows (one per class), 16x16 images with padding 2
        assert grid.size == (3 * 18 + 2, 10 * 18 + 2)


def test_conditional_model_on_unlabelled_data_is_a_clear_error(tiny, tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(8):
        Image.new("L", (16, 16), i * 20).save(folder / f"{i}.png")
    tiny["data"] = {"name": "imagefolder", "root": str(folder), "image_size": 16, "channels": 1,
                    "batch_size": 4, "workers": 0}
    tiny["generator"] = {"name": "dcgan_cond", "nz": 8, "ngf": 8, "num_classes": 10}
    tiny["discriminator"] = {"name": "dcgan_projection", "ndf": 8, "num_classes": 10}
    from gankit.core.errors import DataError

    with pytest.raises(DataError, match="no class labels"):
        train(validate(tiny))
