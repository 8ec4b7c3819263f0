"""The package's shape: imports flow one way, no module is too long, every part has one home.

The import graph is read from the source (every ``import`` and ``from ...
import`` statement, those inside functions included), so a circle that only
closes at run time is caught as well; at file level and at package level
(``training -> loggers -> runs -> training`` is a circle even when no two
files import each other).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "gankit"
# Components: what plugins and the trainer build on. They never reach up into what uses them.
COMPONENTS = ("losses", "regularizers", "augment", "nn", "data", "eval", "sampling", "schedules", "core")
ABOVE_COMPONENTS = ("training", "commands", "loggers", "runs")
# Each package and what it must never import: the run directory's format is the ground floor of everything
# that touches runs; the loggers and the runs package build on it, the trainer on them.
NEVER = {
    "rundir": ("training", "loggers", "runs", "commands"),
    "loggers": ("training", "runs", "commands"),
    "runs": ("training", "commands"),
    "recipe": ("training", "loggers", "runs", "rundir", "commands", "eval"),
    "training": ("commands",),
}


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


def package(module: str) -> str:
    """``gankit.training.step`` -> ``training``; a top-level module is its own package (``contracts``)."""
    return module.split(".")[1] if "." in module else "gankit"


PACKAGES: dict[str, set[str]] = {}
for _m, _deps in GRAPH.items():
    PACKAGES.setdefault(package(_m), set()).update(package(d) for d in _deps if package(d) != package(_m))


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components: a component of more than one node is a circle."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
                found.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circles_between_files():
    found = circles(GRAPH)
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_import_circles_between_packages():
    found = circles(PACKAGES)
    assert not found, "package circles:\n" + "\n".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("pkg", sorted(NEVER))
def test_packages_import_only_what_is_below_them(pkg):
    bad = [f"{m} -> {d}" for m, deps in GRAPH.items() if package(m) == pkg for d in deps if package(d) in NEVER[pkg]]
    assert not bad, "\n".join(bad)


def test_the_circle_check_sees_a_circle_through_packages():
    """The check itself: three packages each importing the next close a circle, though no file is in one."""
    assert circles({"training": {"loggers"}, "loggers": {"runs"}, "runs": {"training"}}) == [["loggers", "runs", "training"]]


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
    training = sorted(p.name for p in (ROOT / "training").iterdir() if p.is_file())
    assert len(training) <= 14, training


@pytest.mark.parametrize("old", ["gankit.errors", "gankit.plugins", "gankit.loss_zoo", "gankit.spectral",
                                 "gankit.training.loop", "gankit.loggers.compare", "gankit.runs.record",
                                 "gankit.training.resume", "gankit.training.checkpoint"])
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
