"""Hostile plugins: whatever a plugin does wrong, the error names it.

Installed plugins are faked with a tiny ``*.dist-info`` (METADATA and
entry_points.txt) next to their module in a folder put on ``sys.path``:
importlib.metadata finds them exactly as it finds pip-installed packages.
"""

from __future__ import annotations

import sys
import uuid

import pytest

from gankit.errors import PluginError, RecipeError
from gankit.plugins import AUTOLOAD_ENV, PluginHost
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


def test_every_broken_installed_plugin_is_named_with_its_package(site):
    for name, (source, _) in BROKEN.items():
        fake_dist(site, name, source)
    fake_dist(site, "fine", GOOD.format(tag="a"))
    with pytest.raises(PluginError) as err:
        PluginHost()
    text = str(err.value)
    assert text.startswith(f"{len(BROKEN)} installed plugins are broken:"), text
    for name, (_, words) in BROKEN.items():
        line = next((ln for ln in text.splitlines() if f"'{name}'" in ln), "")
        assert line, f"{name} is not named:\n{text}"
        assert words in text, (name, text)
    assert "entry point of package fake-raises-on-import 1.0" in text
    fix = text.splitlines()[-1]
    assert fix.startswith("    fix or uninstall fake-") and AUTOLOAD_ENV in fix
    assert all(f"fake-{name.replace('_', '-')}" in fix for name in BROKEN)
    assert "fine" not in text


def test_a_good_installed_plugin_loads_and_a_taken_plugin_name_is_named(site):
    fake_dist(site, "fine", GOOD.format(tag="b"))
    host = PluginHost()
    assert "fake_loss_b" in host.registry("losses")
    assert host.plugins["fine"].origin == "entry point of fake-fine" and host.plugins["fine"].version == "1.0"
    fake_dist(site, "dcgan", GOOD.format(tag="c"), dist="impostor")  # the name of the reference plugin
    with pytest.raises(PluginError, match=r"plugin name 'dcgan' is taken twice: by entry point of (gankit-dcgan|impostor)"):
        PluginHost()


def test_autoload_off_skips_broken_installed_plugins(site, monkeypatch):
    fake_dist(site, "raises_on_import", BROKEN["raises_on_import"][0])
    monkeypatch.setenv(AUTOLOAD_ENV, "1")
    assert list(PluginHost().plugins) == ["gankit"]


def test_a_broken_installed_plugin_through_the_command_line(tmp_path, tiny, write_recipe):
    site = tmp_path / "site"
    site.mkdir()
    fake_dist(site, "raises_on_import", BROKEN["raises_on_import"][0])
    fake_dist(site, "wrong_signature", BROKEN["wrong_signature"][0])
    env = {"PYTHONPATH": str(site)}
    result = run_cli("validate", str(write_recipe(tiny)), env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: 2 installed plugins are broken:")
    assert "plugin 'raises_on_import' (entry point of package fake-raises-on-import 1.0) failed to import" in result.stderr
    assert "plugin 'wrong_signature' (entry point of fake-wrong-signature) is not a valid gankit plugin" in result.stderr
    off = run_cli("validate", str(write_recipe(tiny)), "plugins=[gankit_dcgan]", env={**env, AUTOLOAD_ENV: "1"})
    assert off.returncode == 0, off.stderr


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
    recipe = validate(tiny, "recipe.yaml", base_dir=tmp_path)
    assert recipe.plugins == ["quiet.py", "gankit_dcgan"]

