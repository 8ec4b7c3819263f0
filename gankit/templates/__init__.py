"""The new-plugin scaffold: write a plugin package from the templates in ``gankit/templates/plugin/``.

    create_plugin("my_gan", Path("plugins"))   # -> plugins/my_gan/

The package (``gankit-my-gan``, module ``gankit_my_gan``) registers generator,
discriminator and loss ``my_gan`` through its ``gankit`` entry point, and
ships a recipe on the ``digits`` dataset and tests; ``pip install -e`` makes
it a plugin every gankit command loads. In the templates, ``{{name}}``,
``{{package}}``, ``{{dist}}`` and ``{{gankit_version}}`` are replaced, and
the path parts ``PACKAGE`` and ``NAME`` become the module and the name.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from pathlib import Path

from gankit.core.errors import GankitError

TEMPLATES = Path(__file__).resolve().parent / "plugin"
SUFFIX = ".tmpl"
VALID = re.compile(r"[a-z][a-z0-9_]*")


def names(name: str) -> dict[str, str]:
    """The names a plugin called ``name`` uses: component/entry point, module, distribution."""
    from gankit.core.version import __version__

    plain = name.replace("-", "_")
    if not VALID.fullmatch(plain) or plain.endswith("_") or "__" in plain:
        raise GankitError(f"plugin name {name!r}: use lowercase letters, digits and single underscores, starting "
                          "with a letter (e.g. my_gan)")
    return {"name": plain, "package": f"gankit_{plain}", "dist": f"gankit-{plain.replace('_', '-')}",
            "gankit_version": __version__}


def _check_unused(name: str) -> None:
    """A plugin or component already called ``name`` would clash once the new one is installed."""
    from gankit.core.plugins import get_host

    host = get_host()
    if name in host.plugins:
        raise GankitError(f"a plugin called '{name}' is already loaded ({host.plugins[name].origin}); "
                          "choose another name")
    for kind in ("generators", "discriminators", "losses"):
        reg = host.registry(kind)
        if name in reg:
            raise GankitError(f"{reg.singular} '{name}' is already registered by {reg.entry(name).describe()}; "
                              "choose another name")


def render(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def create_plugin(name: str, directory: str | Path = ".") -> tuple[Path, list[Path]]:
    """Write the plugin into ``directory/<name>``; returns that folder and the files written."""
    values = names(name)
    _check_unused(values["name"])
    parent = Path(directory).expanduser()
    target = parent / values["name"]
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise GankitError(f"'{target}' already exists; choose another name or another --dir")
    if not TEMPLATES.is_dir():
        raise GankitError(f"gankit's plugin templates are missing ('{TEMPLATES}'); reinstall gankit")
    # Written into a temporary folder first, then renamed: never a half-written plugin.
    staging = parent / f".{values['name']}.tmp-{os.getpid()}"
    written = []
    try:
        parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        for src in sorted(TEMPLATES.rglob(f"*{SUFFIX}")):
            rel = src.relative_to(TEMPLATES).with_suffix("")  # models.py.tmpl -> models.py
            parts = [p.replace("PACKAGE", values["package"]).replace("NAME", values["name"]) for p in rel.parts]
            dest = staging.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(render(src.read_text(encoding="utf-8"), values), encoding="utf-8")
            written.append(target.joinpath(*parts))
        if target.exists():
            target.rmdir()  # empty (checked above)
        os.replace(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise GankitError(f"cannot write the plugin into '{parent}': {exc.strerror or exc}") from None
    return target, written


def _program(path: Path, base: Path, cwd: Path) -> str:
    """How to call the program at ``path`` from folder ``base``: its bare name when PATH finds this very file
    (an activated virtual environment); its path from ``base`` when it lies under ``cwd`` (``.venv/bin/gankit``,
    ``../../.venv/bin/gankit`` after a cd); else its absolute path."""
    found = shutil.which(path.name)
    if found and Path(found).resolve() == path.resolve():
        return path.name
    path = Path(os.path.abspath(path))
    if not (path.is_relative_to(cwd) and Path(base).is_relative_to(cwd)):
        return str(path)
    return os.path.relpath(path, base)


def next_steps(target: Path, cwd: Path | None = None) -> list[str]:
    """The commands that install, list, train and test the new plugin, for the Python that runs gankit now.

    After the README's plain set-up (``bash scripts/setup.sh``, nothing
    activated, no pytest) they are ``.venv/bin/...`` commands, and the
    install asks for the plugin's ``[test]`` extra, which installs pytest.
    """
    cwd = (Path.cwd() if cwd is None else cwd).resolve()
    python = Path(sys.executable)
    gankit = python.parent / "gankit"
    target = Path(os.path.abspath(target))
    plugin = os.path.relpath(target, cwd) if target.is_relative_to(cwd) else str(target)

    def run(program: Path, base: Path) -> str:
        return _program(program, base, cwd)

    def gk(base: Path) -> str:
        return run(gankit, base) if gankit.is_file() else f"{run(python, base)} -m gankit"

    return [
        f"{run(python, cwd)} -m pip install -e {shlex.quote(plugin + '[test]')}"
        "    # [test]: pytest too, for its tests (offline: add --no-deps --no-build-isolation)",
        f"{gk(cwd)} plugins",
        f"cd {shlex.quote(plugin)} && {gk(target)} run recipes/{target.name}_digits.yaml && "
        f"{run(python, target)} -m pytest",
    ]
