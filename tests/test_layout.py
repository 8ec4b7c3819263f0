"""The package's shape: imports flow one way, no module is too long, every part has one home.

The import graph is read from the source (every ``import`` and ``from ...
import`` statement, those inside functions included), so a circle that only
closes at run time is caught as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "gankit"
# Components: what plugins and the trainer build on. They never reach up into what uses them.
COMPONENTS = ("losses", "regularizers", "augment", "nn", "data", "eval", "sampling", "schedules", "core")
ABOVE_COMPONENTS = ("training", "commands", "loggers", "runs")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """The gankit modules ``path`` imports (``from gankit.x import y`` counts ``gankit.x.y`` when that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith("gankit") and name != me:
                found.add(name)
    return found


GRAPH = {name: imports(path) for name, path in MODULES.items()}


def test_no_import_circles():
    # Tarjan's strongly connected components: a component of more than one module is a circle.
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_nothing_inside_gankit_imports_the_package_face():
    users = sorted(m for m, deps in GRAPH.items() if "gankit" in deps)
    assert not users, f"these import the package face gankit/__init__.py: {users}"


@pytest.mark.parametrize("package", COMPONENTS)
def test_components_never_import_what_uses_them(package):
    bad = [f"{m} -> {d}" for m, deps in GRAPH.items() if m.split(".")[1:2] == [package]
           for d in deps if d.split(".")[1:2] and d.split(".")[1] in ABOVE_COMPONENTS]
    assert not bad, "\n".join(bad)


def test_only_the_loggers_import_wandb():
    users = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(m == "wandb" or m.startswith("wandb.") for m in mods) and not name.startswith("gankit.loggers"):
                users.append(name)
    assert not users, f"wandb imported outside gankit.loggers: {sorted(set(users))}"


def test_files_are_short_and_the_top_level_is_small():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 350}
    assert not long, f"over 350 lines: {long}"
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(top) <= 6, top
    assert len((ROOT / "training" / "trainer.py").read_text().splitlines()) < 200


@pytest.mark.parametrize("old", ["gankit.errors", "gankit.plugins", "gankit.loss_zoo", "gankit.spectral",
                                 "gankit.training.loop", "gankit.loggers.compare"])
def test_old_module_paths_still_import_with_a_warning(old):
    import importlib
    import sys

    from gankit.core.deprecated import MOVED

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated .* import {MOVED[old]} instead"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])  # the same module: classes and isinstance agree
    assert module.__spec__.name == MOVED[old]


def test_a_built_in_component_is_one_decorated_class_in_one_new_file(tmp_path, monkeypatch):
    """What adding a built-in loss takes: a file in a component package; the built-in plugin finds it."""
    package = tmp_path / "extra_losses"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "focal.py").write_text(
        "from gankit.core.registry import component\n"
        "from gankit.losses.logistic import NonSaturatingLoss\n\n\n"
        '@component("losses", "focal_test")\n'
        "class FocalLoss(NonSaturatingLoss):\n"
        '    """A stand-in new loss."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    from gankit.core import builtin
    from gankit.core.plugins import PluginHost

    monkeypatch.setattr(builtin, "PACKAGES", (*builtin.PACKAGES, "extra_losses"))
    host = PluginHost(autoload=False)
    assert "focal_test" in host.registry("losses") and host.registry("losses").entry("focal_test").plugin == "gankit"
    assert "nonsaturating" in host.registry("losses")  # imported into focal.py, registered once, by its own file
