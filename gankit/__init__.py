"""gankit: a pluggable GAN research toolkit.

    gankit run recipes/quickstart.yaml

Public API: :func:`registry`, :func:`load_recipe`, :func:`train`, :data:`hookimpl`.
"""

__version__ = "0.1.0"

from gankit.hookspecs import hookimpl  # noqa: E402
from gankit.plugins import registry  # noqa: E402


def load_recipe(path, overrides=()):
    """Read and validate a recipe file (see :mod:`gankit.recipe`)."""
    from gankit.recipe import load_recipe as _load

    return _load(path, list(overrides))


def train(recipe, **kwargs):
    """Train ``recipe`` (a validated :class:`gankit.recipe.Recipe`); returns the run directory."""
    from gankit.training.loop import train as _train

    return _train(recipe, **kwargs)


__all__ = ["__version__", "hookimpl", "load_recipe", "registry", "train"]
