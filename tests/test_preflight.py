"""Validation that builds: G and D on a trial batch, the device, every component's defaults recorded,
and overrides that rename a component."""

from __future__ import annotations

import pytest
import torch
import yaml

from helpers import gankit, only_run_dir

PARTS = '''
import torch
from torch import nn
import gankit


class WrongShape(nn.Module):
    def __init__(self, nz: int = 8, image_size: int = 16, channels: int = 1):
        super().__init__()
        self.nz, self.lin = nz, nn.Linear(nz, 12 * 12)

    def forward(self, z):
        return torch.tanh(self.lin(z)).view(-1, 1, 12, 12)


class Wide(nn.Module):
    def __init__(self, nz: int = 8, image_size: int = 16, channels: int = 1):
        super().__init__()
        self.nz, self.lin, self.size = nz, nn.Linear(nz, channels * image_size**2), (channels, image_size, image_size)

    def forward(self, z):
        return 3 * self.lin(z).view(-1, *self.size)


class Explodes(nn.Module):
    def __init__(self, depth: int = 0):
        super().__init__()
        self.layers = nn.Sequential(*[nn.Identity()] * depth)
        self.nz = 8
        if depth < 1:
            raise ZeroDivisionError("depth must be positive")


class TwoLogits(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :2]


@gankit.hookimpl
def gankit_register(registry):
    registry("generators").register("wrong_shape", WrongShape)
    registry("generators").register("wide", Wide)
    registry("generators").register("explodes", Explodes)
    registry("discriminators").register("two_logits", TwoLogits)
'''


@pytest.fixture
def recipe_with(tiny, tmp_path, write_recipe):
    (tmp_path / "parts.py").write_text(PARTS)
    tiny["plugins"] = ["parts.py"]

    def make(**sections):
        tiny.update(sections)
        return write_recipe(tiny)

    return make


def test_a_generator_of_the_wrong_shape_fails_validation_naming_both_shapes(recipe_with):
    code, _, err = gankit("validate", recipe_with(generator={"name": "wrong_shape"}))
    assert code == 2 and "Traceback" not in err
    assert "generator 'wrong_shape' (plugin '" in err and "parts.py" in err
    assert "gives images of shape (2, 1, 12, 12) for 2 latents, but the data are (2, 1, 16, 16)" in err


def test_a_component_that_raises_while_built_is_named_with_its_exception(recipe_with):
    code, _, err = gankit("validate", recipe_with(generator={"name": "explodes"}))
    assert code == 2 and "generator 'explodes'" in err and "failed to build: ZeroDivisionError: depth must be positive" in err


def test_a_discriminator_must_give_one_logit_per_image(recipe_with):
    code, _, err = gankit("validate", recipe_with(discriminator={"name": "two_logits"}))
    assert code == 2 and "discriminator 'two_logits'" in err and "gives (2, 2) for 2 images" in err


def test_outputs_outside_the_data_range_are_a_warning_not_an_error(recipe_with):
    code, out, err = gankit("validate", recipe_with(generator={"name": "wide"}))
    assert code == 0, err
    assert "warning: generator 'wide'" in err and "while the data are in [-1, 1]" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_machine_without_it_is_a_validation_error(recipe_with):
    code, _, err = gankit("validate", recipe_with(device="cuda"))
    assert code == 2 and "device: 'cuda' asked for, but CUDA is not available on this machine" in err


def test_validate_and_the_run_record_every_default(tiny, write_recipe):
    path = write_recipe(tiny)
    code, out, _ = gankit("validate", path)
    shown = yaml.safe_load(out.split("\n", 1)[1])
    assert shown["discriminator"] == {"name": "dcgan", "ndf": 8, "spectral_norm": False}
    assert shown["loss"] == {"name": "bce", "real_label": 1.0, "fake_label": 0.0}
    code, _, err = gankit("run", path)
    assert code == 0, err
    recorded = yaml.safe_load((only_run_dir(tiny["out_dir"]) / "recipe.yaml").read_text())
    assert recorded["discriminator"]["spectral_norm"] is False and recorded["loss"]["real_label"] == 1.0


def test_renaming_a_component_in_an_override_starts_it_from_its_own_defaults(tiny, write_recipe):
    tiny["loss"] = {"name": "bce", "real_label": 0.9}
    path = write_recipe(tiny)
    code, out, err = gankit("validate", path, "loss.name=hinge")
    assert code == 0, err
    assert yaml.safe_load(out.split("\n", 1)[1])["loss"] == {"name": "hinge"}
    code, out, err = gankit("validate", path, "loss.name=lsgan", "loss.real_label=0.8")  # given again: kept
    assert code == 0 and yaml.safe_load(out.split("\n", 1)[1])["loss"]["real_label"] == 0.8
    code, _, err = gankit("validate", path, "loss.name=hinge", "loss.smoothing=0.1")
    assert code == 2 and "loss.smoothing: unknown key (from override 'loss.smoothing=0.1')" in err
