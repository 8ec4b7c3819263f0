"""d_steps, regularisers, augmentation, EMA and conditional models in the trainer.

Every shipped recipe is trained once, as written, by tests/test_recipes_as_written.py (slow tier); resuming
a checkpoint written before the run state, and a component's resumable counter, are tests/test_run_state.py's.
"""

import copy

import pytest
from PIL import Image

from gankit.recipe import validate
from gankit.rundir.checkpoint import load_checkpoint
from gankit.training.state import prepare_resume
from gankit.training.trainer import Trainer, train
from helpers import states_equal


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
    for key in ("generator", "discriminator", "optim_g", "optim_d", "ema", "rng", "regularizer_states", "loss_state"):
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
        # nrow = 3 images across, 10 rows (one per class), 16x16 images with padding 2, enlarged to 64 px tiles
        assert grid.size == ((3 * 18 + 2) * 4, (10 * 18 + 2) * 4)


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
