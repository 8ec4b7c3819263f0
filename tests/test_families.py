"""StyleGAN2-ADA and R3GAN train through gankit's loop on the CPU and resume bit for bit,
with everything their families add: ADA's p and controller, lazy R1, path length, style mixing,
EMA in images, StyleGAN2's lazy Adam settings, R3GAN's schedules."""

from __future__ import annotations

import pytest
import yaml

from gankit.recipe import validate
from gankit.rundir.checkpoint import load_checkpoint
from gankit.training.state import prepare_resume
from gankit.training.trainer import Trainer, train
from helpers import REPO, gankit, states_equal

EXACT = ("generator", "discriminator", "optim_g", "optim_d", "ema", "step", "epoch", "batch_in_epoch", "images_seen",
         "augment_state", "regularizer_states", "rng")


def tiny_family(name: str, out_dir, **train) -> dict:
    recipe = yaml.safe_load((REPO / "recipes" / f"{name}.yaml").read_text())
    recipe.update(out_dir=str(out_dir), device="cpu", log={"progress": "none", "wandb": {"mode": "disabled"}})
    recipe["data"]["batch_size"] = 8
    recipe["eval"] = {"metrics": []}
    recipe["train"].update({"steps": 8, "sample_every": None, "checkpoint_every": None, "log_every": 2, **train})
    return recipe


@pytest.mark.parametrize("name", ["stylegan2_tiny", "r3gan_tiny"])
def test_the_family_resumes_bit_exactly(name, tmp_path):
    recipe = tiny_family(name, tmp_path / "runs")
    whole = load_checkpoint(train(validate(recipe)))
    recipe["train"]["steps"] = 5  # stopped between lazy-regularisation steps, mid ADA interval
    half = train(validate(recipe))
    resumed_recipe, ck, run_dir = prepare_resume(half, ["train.steps=8"])
    Trainer(resumed_recipe, resume=ck, run_dir=run_dir).run()
    resumed = load_checkpoint(half)
    for key in EXACT:
        if key == "rng":  # the training's own streams and augmentation's; the loader's seeds are drawn per epoch
            whole[key].pop("loader"), resumed[key].pop("loader")
        assert states_equal(whole[key], resumed[key]), key
    assert whole["images_seen"] == 8 * 8


def test_stylegan2_ada_moves_p_and_its_lazy_regularisers_adjust_adam(tmp_path):
    recipe = tiny_family("stylegan2_tiny", tmp_path / "runs", steps=12)
    ck = load_checkpoint(train(validate(recipe)))
    ada = ck["augment_state"]
    assert ada["p"] > 0 and ada["controller"]["num_updates"] == 3  # every 4 D updates
    (r1, pl) = ck["regularizer_states"]
    assert r1 == {} and pl["mean"] > 0  # R1 keeps nothing; path length's running mean is kept
    ratio = 4 / 5  # every / (every + 1): lazy R1 (D) and path length (G), both every 4
    for opt in ("optim_g", "optim_d"):
        group = ck[opt]["param_groups"][0]
        assert group["lr"] == pytest.approx(0.0025 * ratio) and group["betas"][1] == pytest.approx(0.99**ratio)


def test_stylegan2_samples_with_its_own_truncation(tmp_path):
    run_dir = train(validate(tiny_family("stylegan2_tiny", tmp_path / "runs", steps=2)))
    code, out, err = gankit("sample", str(run_dir), "--num", "9", "--grid", "--truncation", "0.7", "--seed", "3")
    assert code == 0, err
    assert (run_dir / "samples" / "sample_seed3_psi0.7.png").is_file()


def test_r3gan_schedules_set_every_value_from_the_images_seen(tmp_path):
    recipe = tiny_family("r3gan_tiny", tmp_path / "runs")
    ck = load_checkpoint(train(validate(recipe)))
    seen = ck["images_seen"] - 8  # the last step's values were set before its 8 images
    import gankit as gk

    def scheduled(target):  # the recipe's own schedule for target, at `seen` images
        spec = next(s for s in recipe["schedules"] if target in s["target"])
        args = {k: v for k, v in spec.items() if k not in ("name", "target")}
        return gk.registry("schedules").build("cosine", **args)(seen)

    assert ck["optim_g"]["param_groups"][0]["betas"][1] == pytest.approx(scheduled("optim.g.betas.1"), rel=1e-12)
    assert ck["augment_state"]["p"] == pytest.approx(scheduled("augment.p"), rel=1e-12)


def test_validate_shows_r3gans_five_schedules():
    code, out, err = gankit("validate", "recipes/r3gan_cifar10.yaml")
    assert code == 0, err
    schedules = yaml.safe_load(out.split("\n", 1)[1])["schedules"]
    targets = [s["target"] for s in schedules]
    assert targets == [["optim.g.lr", "optim.d.lr"], ["optim.g.betas.1", "optim.d.betas.1"],
                       ["regularizers.0.gamma", "regularizers.1.gamma"], "train.ema.half_life_kimg", "augment.p"]
    assert all(s["name"] == "cosine" and s["total_nimg"] == 2e7 for s in schedules)


@pytest.mark.parametrize("override, words", [
    ("schedules.0.target=optim.g.momentum", "'optim.g.momentum' is not a hyperparameter gankit can schedule"),
    ("schedules.0.target=regularizers.5.gamma", "the recipe has 2 regulariser(s)"),
    ("augment.target=0.6", "augment ada's controller sets p already"),
])
def test_schedule_mistakes_are_named(override, words, tmp_path, write_recipe):
    recipe = tiny_family("r3gan_tiny", tmp_path / "runs")
    if override.startswith("schedules"):
        recipe["schedules"][0]["target"] = override.partition("=")[2]
        override = []
    else:
        override = [override]
    code, _, err = gankit("validate", str(write_recipe(recipe)), *override)
    assert code == 2 and words in err, err
