"""Plugins: the installed DCGAN entry point, recipe-named local plugins, broken plugins."""

import textwrap

import pytest

from gankit.core.errors import PluginError, RecipeError, RegistryError
from gankit.core.plugins import AUTOLOAD_ENV, PluginHost, get_host
from gankit.recipe import validate
from helpers import run_cli

LOCAL_PLUGIN = '''
import torch
from torch import nn
import gankit

class TinyG(nn.Module):
    def __init__(self, nz: int = 4, channels: int = 1, image_size: int = 16):
        super().__init__()
        self.nz = nz
        self.net = nn.Linear(nz, channels * image_size * image_size)
        self.shape = (channels, image_size, image_size)

    def forward(self, z):
        return torch.tanh(self.net(z)).view(-1, *self.shape)

@gankit.hookimpl
def gankit_register(registry):
    registry("generators").register("tiny_linear", TinyG)
'''


def test_dcgan_comes_from_its_installed_entry_point():
    info = get_host().plugins["dcgan"]
    assert "gankit-dcgan" in info.origin
    assert info.version == "0.1.0"
    assert info.registered == {"generators": ["dcgan", "dcgan_cond"], "discriminators": ["dcgan", "dcgan_projection"]}


def test_autoload_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(AUTOLOAD_ENV, "1")
    host = PluginHost()
    assert list(host.plugins) == ["gankit"]
    assert "dcgan" not in host.registry("generators")


def test_local_plugin_file_named_in_recipe(tmp_path, tiny):
    (tmp_path / "my_parts.py").write_text(LOCAL_PLUGIN)
    tiny["plugins"] = ["my_parts.py"]
    tiny["generator"] = {"name": "tiny_linear", "nz": 4}
    recipe = validate(tiny, "recipe.yaml", base_dir=tmp_path)
    assert recipe.generator.name == "tiny_linear"
    from gankit.training.trainer import train

    run_dir = train(recipe)
    assert (run_dir / "checkpoints" / "last.pt").is_file()


@pytest.mark.slow
def test_list_with_a_recipe_shows_its_plugin_parts_and_no_borrowed_docstring(tmp_path, tiny, write_recipe):
    (tmp_path / "my_parts.py").write_text(LOCAL_PLUGIN)  # TinyG has no docstring of its own
    tiny["plugins"] = ["my_parts.py"]
    tiny["generator"] = {"name": "tiny_linear", "nz": 4}
    recipe = write_recipe(tiny)
    done = run_cli("list", "generators", "--recipe", str(recipe))
    assert done.returncode == 0, done.stderr
    line, following = done.stdout.split("tiny_linear(nz=4, channels=1, image_size=16)", 1)[1].split("\n")[:2]
    assert line == f"    [{tmp_path / 'my_parts.py'}]"
    assert "Base class for all neural network modules" not in done.stdout  # torch's nn.Module docstring
    assert not following.startswith("        ")  # no summary line: the class says nothing of itself


def test_plugin_that_fails_to_import_is_named(tmp_path, tiny):
    (tmp_path / "broken.py").write_text("raise ImportError('no module named fancy_dep')\n")
    tiny["plugins"] = ["broken.py"]
    with pytest.raises(RecipeError) as err:
        validate(tiny, "recipe.yaml", base_dir=tmp_path)
    assert "plugin file 'broken.py' failed to import: ImportError: no module named fancy_dep" in str(err.value)


def test_misspelt_hook_fails_loudly(tmp_path):
    (tmp_path / "typo.py").write_text(textwrap.dedent("""
        import gankit
        @gankit.hookimpl
        def gankit_regster(registry):
            pass
    """))
    with pytest.raises(PluginError, match="typo.py.*not a valid gankit plugin"):
        get_host().load(str(tmp_path / "typo.py"))


def test_duplicate_registration_by_plugin_names_both(tmp_path):
    (tmp_path / "dup.py").write_text(textwrap.dedent("""
        import gankit
        @gankit.hookimpl
        def gankit_register(registry):
            registry("losses").register("bce", object)
    """))
    with pytest.raises(RegistryError) as err:
        get_host().load(str(tmp_path / "dup.py"))
    assert "loss 'bce' is registered twice: first by plugin 'gankit'" in str(err.value)
    assert "dup.py" in str(err.value)


def test_plugin_raising_in_its_hook_is_named(tmp_path):
    (tmp_path / "angry.py").write_text(textwrap.dedent("""
        import gankit
        @gankit.hookimpl
        def gankit_register(registry):
            raise RuntimeError("cannot register today")
    """))
    with pytest.raises(PluginError, match="angry.py.*failed while registering: RuntimeError: cannot register today"):
        get_host().load(str(tmp_path / "angry.py"))


@pytest.mark.slow
def test_gankit_plugins_command_lists_versions_and_components():
    result = run_cli("plugins")
    assert result.returncode == 0, result.stderr
    assert "gankit 0.1.0  (built-in)" in result.stdout
    assert "dcgan 0.1.0  (entry point of gankit-dcgan)" in result.stdout
    assert "generators: dcgan" in result.stdout
    off = run_cli("plugins", env={AUTOLOAD_ENV: "1"})
    assert "dcgan" not in off.stdout.replace("GANKIT_DISABLE", "")
    assert "installed plugins not loaded" in off.stdout


def test_broken_plugin_in_recipe_exits_2_without_traceback(tmp_path, tiny, write_recipe):
    (tmp_path / "broken.py").write_text("import nonexistent_package_xyz\n")
    tiny["plugins"] = ["broken.py"]
    result = run_cli("validate", str(write_recipe(tiny)))
    assert result.returncode == 2
    assert "broken.py" in result.stderr and "ModuleNotFoundError" in result.stderr
    assert "Traceback" not in result.stderr
