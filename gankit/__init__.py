"""gankit: a pluggable GAN research toolkit.

    gankit run recipes/quickstart.yaml

Public API:

- building: :func:`registry`, :func:`load_recipe`, :func:`train`;
- plugins: :data:`hookimpl`, :func:`component` and :func:`register_declared`;
- after training: :func:`load_generator`, :func:`generate`, :func:`save_grid`, :func:`load_run`::

    G = gankit.load_generator("runs/quickstart/<id>")
    images = gankit.generate(G, 16, seed=0)
    gankit.save_grid(images, "grid.png", scale=4)

The contracts a component must meet are the Protocols of :mod:`gankit.contracts`.

Nothing inside gankit imports this module: it is the face users import, and
it imports the rest only when a function is called.
"""

from gankit.core.version import __version__
from gankit.core.deprecated import install as _install_deprecated_paths

_install_deprecated_paths()  # gankit.errors, gankit.loss_zoo, ... still import, with a warning

# Imported when first used: every `gankit` command imports this package, and `gankit --help` should not
# wait for pluggy and the plugin host (importlib.metadata), nor a command that needs neither.
_LAZY = {"hookimpl": "gankit.core.hookspecs", "registry": "gankit.core.plugins",
         "component": "gankit.core.registry", "register_declared": "gankit.core.registry"}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'gankit' has no attribute {name!r}")
    import importlib

    value = globals()[name] = getattr(importlib.import_module(_LAZY[name]), name)
    return value


def load_recipe(path, overrides=()):
    """Read and validate a recipe file (see :mod:`gankit.recipe`)."""
    from gankit.recipe import load_recipe as _load

    return _load(path, list(overrides))


def train(recipe, **kwargs):
    """Train ``recipe`` (a validated :class:`gankit.recipe.Recipe`); returns the run directory."""
    from gankit.training.trainer import train as _train

    return _train(recipe, **kwargs)


def load_generator(run_or_checkpoint, *, ema=True, device="cpu", batchnorm=None):
    """A run's (or checkpoint's) generator, ready to sample; see :func:`gankit.runs.loading.load_generator`."""
    from gankit.runs.loading import load_generator as _load

    return _load(run_or_checkpoint, ema=ema, device=device, batchnorm=batchnorm)


def generate(G, n, seed=0, labels=None, truncation=None, batch_size=256):
    """``n`` images in [-1, 1], the same for a seed; see :func:`gankit.sampling.images.generate`."""
    from gankit.sampling import generate as _generate

    return _generate(G, n, seed=seed, labels=labels, truncation=truncation, batch_size=batch_size)


def save_grid(images, path, nrow=None, scale=1):
    """Images in [-1, 1] as one PNG grid; see :func:`gankit.sampling.images.save_grid`."""
    from gankit.sampling import save_grid as _save

    return _save(images, path, nrow=nrow, scale=scale)


def load_run(run_dir):
    """A run directory's recipe, metrics rows, checkpoints and samples; see :func:`gankit.rundir.record.load_run`."""
    from gankit.rundir.record import load_run as _load

    return _load(run_dir)


__all__ = ["__version__", "component", "generate", "hookimpl", "load_generator", "load_recipe", "load_run",
           "register_declared", "registry", "save_grid", "train"]
