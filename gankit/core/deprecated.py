"""Old module paths that still import, with a DeprecationWarning, for one release.

gankit 0.1's modules moved into packages (``gankit.errors`` is now
``gankit.core.errors``, ``gankit.loss_zoo`` is ``gankit.losses``, ...), and
the training wing folded into fewer files (``gankit.training.resume`` is
now ``gankit.training.state``, ``gankit.runs.record`` is
``gankit.rundir.record``, ...). An
import of an old path gives the new module itself (the same object, so
classes and ``isinstance`` agree) and warns once, naming the new path.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings

MOVED = {
    "gankit.errors": "gankit.core.errors",
    "gankit.plugins": "gankit.core.plugins",
    "gankit.hookspecs": "gankit.core.hookspecs",
    "gankit.builtins": "gankit.core.builtin",
    "gankit.fsync": "gankit.core.paths",
    "gankit.loss_zoo": "gankit.losses",
    "gankit.conditional": "gankit.nn.conditional",
    "gankit.spectral": "gankit.nn.spectral",
    "gankit.ema": "gankit.training.ema",
    "gankit.scaffold": "gankit.templates",
    "gankit.loggers.compare": "gankit.runs.compare",
    "gankit.loggers.report": "gankit.runs.report",
    "gankit.runs.record": "gankit.rundir.record",
    "gankit.training.sampler": "gankit.data.sampler",
    "gankit.training.loop": "gankit.training.trainer",
    "gankit.training.build": "gankit.recipe.build",
    "gankit.training.parts": "gankit.recipe.build",
    "gankit.training.preflight": "gankit.recipe.preflight",
    "gankit.training.checkpoint": "gankit.rundir.checkpoint",
    "gankit.training.rundir": "gankit.rundir.layout",
    "gankit.training.resume": "gankit.training.state",
    "gankit.training.interrupts": "gankit.training.trainer",
    "gankit.training.guard": "gankit.training.nonfinite",
    "gankit.training.progress": "gankit.training.reporter",
    "gankit.training.hyper": "gankit.training.players",
    "gankit.training.sampling": "gankit.sampling.images",
    "gankit.eval.features": "gankit.eval.extractors",
    "gankit.data.celeba": "gankit.data.datasets.celeba",
    "gankit.data.cifar10": "gankit.data.datasets.cifar10",
    "gankit.data.digits": "gankit.data.datasets.digits",
    "gankit.data.imagefolder": "gankit.data.files",
    "gankit.data.mnist": "gankit.data.datasets.mnist",
}


class _Alias:
    """Finds the old names in :data:`MOVED` and loads them as their new modules.

    A meta path finder and loader by its methods (``find_spec``, ``create_module``, ``exec_module``), without
    ``importlib.abc``'s base classes: importing that module costs every command a tenth of a second.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def __init__(self):
        self._specs = {}  # new module name -> its own spec, while the import system swaps it

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} is deprecated and will be removed in gankit 0.3; import {new} instead",
                      DeprecationWarning, stacklevel=3)
        module = importlib.import_module(new)
        self._specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module):
        # The new module is executed already. The import system has just set its __spec__ to the
        # alias's: put its own back, so that it still knows where it lives.
        module.__spec__ = self._specs.pop(module.__name__, module.__spec__)


_finder = _Alias()


def install() -> None:
    """Put the alias finder on ``sys.meta_path`` (once)."""
    if _finder not in sys.meta_path:
        sys.meta_path.append(_finder)
