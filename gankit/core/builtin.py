"""gankit's own components, registered through the same hook as any plugin.

Each built-in component is declared where it is defined, with
``@component(kind, name)`` (:func:`gankit.core.registry.component`). This
plugin imports every module of the packages below and replays their
declarations into the host's registries, so adding a built-in is one
decorated class or function in one file of one of these packages.

The packages are named, not imported, here: the core sits below every
component package and imports none of them until the hook runs.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from gankit.core.hookspecs import hookimpl
from gankit.core.registry import register_declared

# Every module of these packages (and of their subpackages), or the module itself, is searched for declarations.
PACKAGES = (
    "gankit.losses",
    "gankit.regularizers",
    "gankit.augment",
    "gankit.schedules",
    "gankit.data.datasets",
    "gankit.eval.metrics",
    "gankit.eval.extractors",
    "gankit.eval.dinov2",
)


def modules(package: str) -> list[ModuleType]:
    """``package`` and all its submodules, imported, in a stable order."""
    root = importlib.import_module(package)
    found = [root]
    if not hasattr(root, "__path__"):  # a plain module
        return found
    for info in sorted(pkgutil.walk_packages(root.__path__, prefix=f"{package}."), key=lambda i: i.name):
        found.append(importlib.import_module(info.name))
    return found


@hookimpl
def gankit_register(registry):
    for package in PACKAGES:
        register_declared(registry, *modules(package))
