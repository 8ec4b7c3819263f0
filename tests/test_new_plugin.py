"""`gankit new-plugin`: the scaffold's round trip (create, install, list, train, its own tests) and its mistakes.

The round trip pip-installs the new plugin into a throwaway virtual
environment layered on this one (it sees every package installed here
through a .pth file), so the shared .venv never holds the test plugin, even
when the test is killed half-way.
"""

import os
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

from gankit.core.errors import GankitError
from gankit.templates import create_plugin, names
from helpers import run_cli

NAME = "roundtrip_gan"


def layered_venv(path: Path) -> Path:
    """A venv at ``path`` whose Python also sees this interpreter's site-packages; returns its python."""
    venv.EnvBuilder(with_pip=False).create(path)
    python = path / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    # addsitedir (not a bare path) so the .pth files there run too: editable installs, setuptools' shim
    Path(purelib, "_gankit_parent_env.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    return python


def run(python: Path, *args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "WANDB_MODE": "disabled"}
    env.pop("PYTHONPATH", None)  # pytest's own pythonpath (tests/) must not leak into the plugin's tests
    return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def check(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_scaffold_round_trip(tmp_path):
    created = run_cli("new-plugin", NAME, "--dir", str(tmp_path / "plugins"))
    assert created.returncode == 0, created.stderr
    plugin = tmp_path / "plugins" / NAME
    assert f"created plugin '{NAME}'" in created.stdout and (plugin / "pyproject.toml").is_file()

    python = layered_venv(tmp_path / "venv")
    check(run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(plugin),
              cwd=tmp_path))

    plugins = check(run(python, "-m", "gankit", "plugins", cwd=tmp_path))
    assert f"{NAME} 0.1.0  (entry point of gankit-roundtrip-gan)" in plugins
    assert f"    generators: {NAME}\n    discriminators: {NAME}\n    losses: {NAME}" in plugins
    generators = check(run(python, "-m", "gankit", "list", "generators", cwd=tmp_path))
    assert f"{NAME}(nz=64, width=32, channels=1, image_size=32)    [{NAME}]" in generators

    recipe = f"recipes/{NAME}_digits.yaml"
    assert (plugin / recipe).read_text().splitlines()[0] == f"# gankit run {recipe}"
    out_dir = tmp_path / "runs"
    check(run(python, "-m", "gankit", "run", recipe, "train.steps=2", f"out_dir={out_dir}", "device=cpu",
              "log.progress=none", "log.wandb.mode=disabled", cwd=plugin))
    assert list(out_dir.glob(f"{NAME}_digits/*/checkpoints/last.pt"))

    tests = check(run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=plugin))
    assert " passed" in tests and "failed" not in tests

    # and this environment never saw it
    assert NAME not in run_cli("plugins").stdout


def test_names_follow_python_packaging():
    assert names("my-gan") | {"gankit_version": ""} == {"name": "my_gan", "package": "gankit_my_gan",
                                                        "dist": "gankit-my-gan", "gankit_version": ""}


@pytest.mark.parametrize("bad", ["My GAN", "1gan", "gan__x", "gan_", "", "gän"])
def test_bad_names_say_what_a_name_may_hold(bad, tmp_path):
    with pytest.raises(GankitError, match="lowercase letters, digits and single underscores"):
        create_plugin(bad, tmp_path)


def test_names_in_use_and_existing_folders_are_refused(tmp_path):
    with pytest.raises(GankitError, match="plugin called 'dcgan' is already loaded"):
        create_plugin("dcgan", tmp_path)
    with pytest.raises(GankitError, match="loss 'hinge' is already registered by plugin 'gankit'"):
        create_plugin("hinge", tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(GankitError, match="already exists; choose another name or another --dir"):
        create_plugin("taken", tmp_path)
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_the_scaffold_is_complete_and_has_no_placeholders_left(tmp_path):
    target, files = create_plugin("fresh_gan", tmp_path)
    assert target == tmp_path / "fresh_gan" and all(f.is_file() for f in files)
    rel = sorted(str(f.relative_to(target)) for f in files)
    assert rel == ["README.md", "gankit_fresh_gan/__init__.py", "gankit_fresh_gan/loss.py",
                   "gankit_fresh_gan/models.py", "pyproject.toml", "recipes/fresh_gan_digits.yaml",
                   "tests/test_fresh_gan.py"]
    for f in files:
        assert "{{" not in f.read_text(), f
    assert [p.name for p in tmp_path.iterdir()] == ["fresh_gan"]  # no staging folder left behind
    for f in files:
        if f.suffix == ".py":
            compile(f.read_text(), str(f), "exec")
