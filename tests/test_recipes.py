"""Recipes: every shipped recipe validates; every kind of mistake gets its clear error."""

from pathlib import Path

import pytest

from gankit.core.errors import GankitError, RecipeError
from gankit.recipe import load_recipe, resolved, validate
from helpers import REPO, run_cli

RECIPES = sorted((REPO / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_shipped_recipe_validates_and_names_its_command(path):
    recipe = load_recipe(path)
    assert recipe.name
    first = path.read_text().splitlines()[0]
    assert first == f"# gankit run recipes/{path.name}", "a recipe starts with the command that runs it"


def test_the_tutorial_recipe_is_the_tutorial():
    r = load_recipe(REPO / "recipes" / "dcgan_celeba.yaml")
    assert (r.data.name, r.data.args["root"], r.data.image_size, r.data.batch_size, r.data.workers) == (
        "imagefolder", "data/celeba", 64, 128, 2)
    assert r.train.epochs == 5 and r.seed == 999 and r.loss.name == "bce"
    assert r.generator.args == {"nz": 100, "ngf": 64} and r.discriminator.args == {"ndf": 64, "spectral_norm": False}
    for opt in (r.optim.g, r.optim.d):
        assert (opt.name, opt.lr, tuple(opt.args["betas"])) == ("adam", 2e-4, (0.5, 0.999))
    assert (r.train.sample_every, r.train.num_samples) == (500, 64)


def problems(recipe: dict, overrides=()) -> list[str]:
    with pytest.raises(RecipeError) as err:
        validate(recipe, "r.yaml", overrides)
    return err.value.problems


def test_unknown_keys_everywhere_with_did_you_mean(tiny):
    tiny["train"]["stpes"] = 3
    tiny["generatr"] = {}
    tiny["generator"]["ngff"] = 3
    tiny["data"]["batchsize"] = 3
    tiny["optim"] = {"g": {"name": "adam", "lrr": 0.1}}
    found = "\n".join(problems(tiny))
    assert "train.stpes: unknown key; did you mean 'train.steps'" in found
    assert "generatr: unknown key; did you mean 'generator'?" in found
    assert "generator.ngff: unknown key; did you mean 'generator.ngf'?" in found
    assert "generator 'dcgan' accepts: nz, ngf" in found
    assert "data.batchsize: unknown key; did you mean 'data.batch_size'?" in found
    assert "optim.g.lrr: unknown key; did you mean 'optim.g.lr'?" in found


def test_all_problems_are_reported_at_once(tiny):
    tiny["train"]["steps"] = "many"
    tiny["seed"] = [1]
    tiny["generator"]["name"] = "dcgam"
    tiny["loss"]["name"] = "bec"
    tiny["data"]["channels"] = 2
    found = problems(tiny)
    assert len(found) == 5, found
    text = "\n".join(found)
    assert "train.steps: Input should be a valid integer" in text and "'many'" in text
    assert "generator.name: 'dcgam' is not a registered generator; did you mean 'dcgan'?" in text
    assert "loss.name: 'bec' is not a registered loss; did you mean 'bce'?" in text
    assert "data.channels" in text


def test_component_argument_types_are_checked_and_coerced(tiny):
    tiny["generator"]["ngf"] = "wide"
    assert any(p.startswith("generator.ngf: Input should be a valid integer") for p in problems(tiny))
    tiny["generator"]["ngf"] = "16"  # a quoted number is the number
    tiny["optim"] = {"g": {"name": "adam", "lr": "2e-4"}}  # YAML 1.1 reads 2e-4 as a string
    recipe = validate(tiny)
    assert recipe.generator.args["ngf"] == 16
    assert recipe.optim.g.lr == 2e-4


def test_injected_arguments_and_unknown_optimizer(tiny):
    tiny["generator"]["image_size"] = 32
    tiny["optim"] = {"d": {"name": "adma"}}
    text = "\n".join(problems(tiny))
    assert "generator.image_size: is set by gankit" in text
    assert "optim.d.name: 'adma' is not a known optimizer; did you mean 'adam'" in text


def test_overrides_are_checked_like_the_file(tiny):
    found = problems(tiny, ["train.stpes=10", "train.steps=x", "nonsense"])
    text = "\n".join(found)
    assert "train.stpes: unknown key (from override 'train.stpes=10'); did you mean 'train.steps'?" in text
    assert "(from override 'train.steps=x')" in text
    assert "override 'nonsense' is not of the form key.path=value" in text
    recipe = validate(tiny, overrides=["train.steps=7", "generator.ngf=4", "data.image_size=32"])
    assert (recipe.train.steps, recipe.generator.args["ngf"], recipe.data.image_size) == (7, 4, 32)


def test_steps_or_epochs_required(tiny):
    del tiny["train"]["steps"]
    assert any("set train.steps" in p for p in problems(tiny))


def test_yaml_is_only_safe_loaded(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(path)
    assert not marker.exists()


def test_broken_yaml_names_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ntrain: {steps: 3\n")
    with pytest.raises(RecipeError, match=r"line \d+"):
        load_recipe(path)


def test_resolved_recipe_has_every_default(tiny):
    data = resolved(validate(tiny))
    assert data["optim"]["g"] == {"name": "adam", "lr": 0.0002, "betas": [0.5, 0.999]}
    assert data["data"]["on_bad_image"] == "error"
    assert resolved(validate(data)) == data  # the resolved recipe is itself a valid recipe


@pytest.mark.slow
def test_cli_mistakes_exit_2_without_traceback(tiny, write_recipe):
    path = write_recipe(tiny)
    result = run_cli("validate", str(path), "train.stpes=10", "generator.name=dcgan64")
    assert result.returncode == 2
    assert f"error: {path} has 2 problems" in result.stderr
    assert "did you mean 'train.steps'?" in result.stderr
    assert "did you mean 'dcgan'?" in result.stderr
    assert "Traceback" not in result.stderr
    missing = run_cli("run", str(Path(path).with_name("nope.yaml")))
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    ok = run_cli("validate", str(path), "train.steps=9")
    assert ok.returncode == 0 and "steps: 9" in ok.stdout


def test_missing_data_folder_is_a_clear_error_before_training(tiny):
    tiny["data"] = {"name": "imagefolder", "root": "/nonexistent/celeba", "image_size": 16, "channels": 3}
    from gankit.training.trainer import train

    with pytest.raises(GankitError, match="/nonexistent/celeba"):
        train(validate(tiny))
    assert not Path(tiny["out_dir"]).exists()  # nothing was created
