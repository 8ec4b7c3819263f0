"""Registries: one small name -> component table per kind.

A component is any callable that builds the thing (a class or a factory
function); its keyword arguments are what a recipe may set. Each registration
remembers where it came from (plugin and source location) so that a duplicate
name can name both places.

    >>> gens = gankit.registry("generators")
    >>> @gens.register("mygen")
    ... class MyGenerator(nn.Module): ...
    >>> gens.list("my*")
    ['mygen']
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from gankit.errors import RegistryError, suggestion

KINDS = (
    "generators", "discriminators", "losses", "datasets", "metrics", "feature_extractors",
    "regularizers", "augmentations",
)

# The plugin whose hook is running; set by the plugin manager so that every
# registration made inside a hook is attributed to that plugin.
_current_plugin: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "gankit_current_plugin", default=None
)


@contextlib.contextmanager
def registering_as(plugin: str) -> Iterator[None]:
    """Attribute registrations made inside the block to ``plugin``."""
    token = _current_plugin.set(plugin)
    try:
        yield
    finally:
        _current_plugin.reset(token)


@dataclass(frozen=True)
class Entry:
    """One registered component."""

    name: str
    obj: Callable[..., Any]
    plugin: str  # plugin that registered it ("gankit" for built-ins)
    location: str  # "module.py:line" of the component's definition

    def describe(self) -> str:
        return f"plugin '{self.plugin}' ({self.location})"


def _location(obj: Any) -> str:
    try:
        file = inspect.getsourcefile(obj) or "?"
        line = inspect.getsourcelines(obj)[1]
        return f"{file}:{line}"
    except (TypeError, OSError):
        return getattr(obj, "__module__", "?")


class Registry:
    """Name -> component for one kind (``generators``, ``losses``, ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    @property
    def singular(self) -> str:
        """``generators`` -> ``generator``, ``losses`` -> ``loss``."""
        for plural, single in (("sses", "ss"), ("s", "")):
            if self.kind.endswith(plural):
                return self.kind[: -len(plural)] + single
        return self.kind

    def register(self, name: str, obj: Callable[..., Any] | None = None, *, plugin: str | None = None):
        """Register ``obj`` under ``name``; without ``obj``, return a decorator."""
        if obj is None:
            return lambda o: self.register(name, o, plugin=plugin)
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{self.singular} names must be non-empty strings, got {name!r}")
        source = plugin or _current_plugin.get() or getattr(obj, "__module__", "?")
        entry = Entry(name, obj, source, _location(obj))
        if name in self._entries:
            first = self._entries[name]
            raise RegistryError(
                f"{self.singular} '{name}' is registered twice: first by {first.describe()}, "
                f"again by {entry.describe()}; rename one of them"
            )
        self._entries[name] = entry
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests use this to stay hermetic)."""
        self._entries.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(self.unknown_message(name)) from None

    def get(self, name: str) -> Callable[..., Any]:
        """The component registered as ``name``."""
        return self.entry(name).obj

    def build(self, name: str, **kwargs: Any) -> Any:
        """Call the component registered as ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)

    def list(self, pattern: str = "*") -> list[str]:
        """Registered names matching the shell-style ``pattern``, sorted."""
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.list()]

    def unknown_message(self, name: object) -> str:
        """"'x' is not a registered generator; did you mean 'y'?" plus the full list."""
        msg = f"{name!r} is not a registered {self.singular}{suggestion(str(name), self._entries)}"
        plugins = sorted({e.plugin for e in self._entries.values()})
        registered = ", ".join(self.list()) or "(none)"
        msg += f"\n    registered: {registered}"
        if plugins:
            msg += f"   (plugins: {', '.join(plugins)})"
        return msg
