"""Hostile plugins: whatever a plugin does wrong, the error names it.

Installed plugins are faked with a tiny ``*.dist-info`` (METADATA and
entry_points.txt) next to their module in a folder put on ``sys.path``:
importlib.metadata finds them exactly as it finds pip-installed packages.
"""

from __future__ import annotations

import sys
import uuid

import pytest

from gankit.core.errors import RecipeError
from gankit.core.plugins import AUTOLOAD_ENV, DISABLE_ENV, PluginHost, PluginWarning
from gankit.recipe import validate
from helpers import run_cli

HOOK = "import gankit\n\n@gankit.hookimpl\n"
BROKEN = {  # entry-point name -> (module source, words the error must say about it)
    "raises_on_import": ("raise RuntimeError('needs a driver that is not here')\n",
                         "failed to import: RuntimeError: needs a driver that is not here"),
    "exits_on_import": ("import sys\nsys.exit(3)\n", "failed to import: SystemExit: 3"),
    "wrong_signature": (HOOK + "def gankit_register(registry, extra):\n    pass\n",
                        "Argument(s) {'extra'} are declared in the hookimpl but can not be found in the hookspec"),
    "takes_dcgan": (HOOK + "def gankit_register(registry):\n    registry('generators').register('dcgan', object)\n",
                    "generator 'dcgan' is registered twice"),
    "raises_registering": (HOOK + "def gankit_register(registry):\n    raise KeyError('oops')\n",
                           "failed while registering: KeyError: 'oops'"),
}
GOOD = HOOK + "def gankit_register(registry):\n    registry('losses').register('fake_loss_{tag}', object)\n"


def fake_dist(site, entry_name: str, source: str, dist: str | None = None, module: str | None = None) -> str:
    """An installed package ``dist`` 1.0 whose ``gankit`` entry point ``entry_name`` is ``module``."""
    module = module or f"fake_{entry_name}_{uuid.uuid4().hex[:6]}"
    dist = dist or f"fake-{entry_name.replace('_', '-')}"
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[gankit]\n{entry_name} = {module}\n")
    return module


@pytest.fixture
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in [m for m in sys.modules if m.startswith("fake_")]:
        del sys.modules[name]


def test_every_broken_installed_plugin_is_left_out_and_named_with_its_package(site):
    for name, (source, _) in BROKEN.items():
        fake_dist(site, name, source)
    fake_dist(site, "fine", GOOD.format(tag="a"))
    host = PluginHost()  # a broken installed plugin no longer stops gankit
    assert "fake_loss_a" in host.registry("losses") and "dcgan" in host.plugins
    assert sorted(host.broken) == sorted(BROKEN)
    for name, (_, words) in BROKEN.items():
        assert words in host.broken[name], (name, host.broken[name])
    assert "entry point of package fake-raises-on-import 1.0" in host.broken["raises_on_import"]
    # the import error names the plugin's own file and line
    assert "fake_raises_on_import_" in host.broken["raises_on_import"] and ".py:1)" in host.broken["raises_on_import"]
    assert "fine" not in host.broken
    # a recipe that needs a component nobody registered is told which plugins were left out
    assert "broken installed plugin 'raises_on_import' was not loaded" in host.why_missing()


def test_a_good_installed_plugin_loads_and_a_taken_plugin_name_is_named(site):
    fake_dist(site, "fine", GOOD.format(tag="b"))
    host = PluginHost()
    assert "fake_loss_b" in host.registry("losses")
    assert host.plugins["fine"].origin == "entry point of fake-fine" and host.plugins["fine"].version == "1.0"
    fake_dist(site, "dcgan", GOOD.format(tag="c"), dist="impostor")  # the name of the reference plugin
    host = PluginHost()
    assert "dcgan" in host.plugins  # the first of the two loads
    assert host.broken["dcgan"].startswith("plugin name 'dcgan' is taken twice: by entry point of")


def test_single_installed_plugins_can_be_left_out(site, monkeypatch):
    fake_dist(site, "fine", GOOD.format(tag="d"))
    monkeypatch.setenv(DISABLE_ENV, "fine, sngan")
    host = PluginHost()
    assert "fine" not in host.plugins and "sngan" not in host.plugins and "dcgan" in host.plugins
    assert host.disabled == ["fine", "sngan"]
    assert "left out by GANKIT_DISABLE_PLUGINS: fine, sngan" in host.why_missing()


def test_autoload_off_skips_broken_installed_plugins(site, monkeypatch):
    fake_dist(site, "raises_on_import", BROKEN["raises_on_import"][0])
    monkeypatch.setenv(AUTOLOAD_ENV, "1")
    assert list(PluginHost().plugins) == ["gankit"]


@pytest.mark.slow
def test_a_broken_installed_plugin_through_the_command_line(tmp_path, tiny, write_recipe):
    site = tmp_path / "site"
    site.mkdir()
    fake_dist(site, "raises_on_import", BROKEN["raises_on_import"][0])
    fake_dist(site, "wrong_signature", BROKEN["wrong_signature"][0])
    env = {"PYTHONPATH": str(site)}
    fine = run_cli("validate", str(write_recipe(tiny)), env=env)
    assert fine.returncode == 0, fine.stderr  # the recipe needs neither broken plugin
    listed = run_cli("plugins", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "raises_on_import  (broken, not loaded)" in listed.stdout
    assert "plugin 'raises_on_import' (entry point of package fake-raises-on-import 1.0) failed to import" in listed.stdout
    assert "plugin 'wrong_signature' (entry point of fake-wrong-signature) is not a valid gankit plugin" in listed.stdout
    tiny["generator"]["name"] = "from_the_broken_one"
    missing = run_cli("validate", str(write_recipe(tiny)), env=env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr, missing.stderr
    assert "broken installed plugin 'raises_on_import' was not loaded: plugin 'raises_on_import'" in missing.stderr
    off = run_cli("validate", str(write_recipe(tiny)), env={**env, AUTOLOAD_ENV: "1"})
    assert off.returncode == 2 and f"installed plugins are not loaded ({AUTOLOAD_ENV} is set)" in off.stderr


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_broken_recipe_plugin_is_named(tmp_path, tiny, name):
    source, words = BROKEN[name]
    (tmp_path / f"{name}.py").write_text(source)
    tiny["plugins"] = [f"{name}.py"]
    with pytest.raises(RecipeError) as err:
        validate(tiny, "recipe.yaml", base_dir=tmp_path)
    assert f"{name}.py" in str(err.value) and words in str(err.value), str(err.value)


def test_hooks_may_take_fewer_arguments_and_a_plugin_loads_once_under_any_name(tmp_path, tiny):
    (tmp_path / "quiet.py").write_text(HOOK + "def gankit_register():\n    pass\n")
    tiny["plugins"] = ["quiet.py", "gankit_dcgan"]  # the installed dcgan plugin, named again by module
    with pytest.warns(PluginWarning, match="its gankit_register hook ran but registered no component"):
        recipe = validate(tiny, "recipe.yaml", base_dir=tmp_path)
    assert recipe.plugins == ["quiet.py", "gankit_dcgan"]



def test_a_plugin_without_the_hookimpl_decorator_is_warned_about(tmp_path, tiny):
    (tmp_path / "forgot.py").write_text("def gankit_register(registry):\n    registry('losses').register('x', object)\n")
    tiny["plugins"] = ["forgot.py"]
    with pytest.warns(PluginWarning, match=r"forgot.py' \(recipe\) registered nothing: its gankit_register function "
                                           r"is not decorated with @gankit.hookimpl"):
        validate(tiny, "recipe.yaml", base_dir=tmp_path)


def test_an_import_error_names_the_line_inside_the_plugin(tmp_path, tiny):
    (tmp_path / "parts.py").write_text("import os\n\nfrom torch import not_a_thing\n")
    tiny["plugins"] = ["parts.py"]
    with pytest.raises(RecipeError) as err:
        validate(tiny, "recipe.yaml", base_dir=tmp_path)
    assert f"(at {tmp_path / 'parts.py'}:3)" in str(err.value) and "ImportError" in str(err.value)
