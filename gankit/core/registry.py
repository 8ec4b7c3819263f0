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

A component can also be declared where it is defined, and registered later by
whichever plugin owns its module (gankit's built-ins are declared this way)::

    @component("losses", "hinge")
    class HingeLoss(GANLoss): ...

    @gankit.hookimpl
    def gankit_register(registry):
        register_declared(registry, my_module)   # every @component of my_module
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from types import ModuleType

from gankit.core.errors import GankitError, RegistryError, suggestion

KINDS = (
    "generators", "discriminators", "losses", "datasets", "metrics", "feature_extractors",
    "regularizers", "augmentations", "schedules",
)
# Where @component keeps its declarations on the object it decorates.
_DECLARED = "__gankit_components__"

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


def signature_of(obj: Callable[..., Any]) -> inspect.Signature | None:
    """The signature of a component (annotations evaluated when they can be), or None.

    A class that defines no ``__init__`` of its own takes no arguments, though
    the one it inherits from ``nn.Module`` (or ``object``) reads
    ``(*args, **kwargs)``.
    """
    if isinstance(obj, type) and _inherited_init(obj):
        return inspect.Signature()
    try:
        return inspect.signature(obj, eval_str=True)
    except (NameError, TypeError, ValueError):
        try:
            return inspect.signature(obj)
        except (TypeError, ValueError):
            return None


def _inherited_init(cls: type) -> bool:
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            return klass.__module__.startswith("torch.nn") or klass is object
    return True


def accepts(obj: Callable[..., Any], name: str) -> bool:
    """Whether ``obj`` takes a keyword argument ``name``."""
    sig = signature_of(obj)
    if sig is None:
        return True
    return name in sig.parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()
    )


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

    def build(self, name: str, /, injected: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Call the component registered as ``name`` with ``kwargs``.

        ``injected`` are values gankit offers every component of a kind (a
        generator's ``image_size`` and ``channels``): each is passed only when
        the component's signature takes it.
        """
        obj = self.get(name)
        args = {k: v for k, v in (injected or {}).items() if accepts(obj, k)}
        args.update(kwargs)
        return obj(**args)

    def build_from_recipe(self, name: str, /, injected: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """:meth:`build`, where a component rejecting its arguments (``ValueError``/``TypeError``)
        is the recipe's mistake: a :class:`GankitError` naming the component and the arguments."""
        try:
            return self.build(name, injected, **kwargs)
        except GankitError:
            raise
        except (ValueError, TypeError) as exc:
            args = {k: v for k, v in (injected or {}).items() if accepts(self.get(name), k)} | kwargs
            raise GankitError(f"{self.singular} '{name}' rejected its arguments {args}: {exc}") from None

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


def component(kind: str, name: str):
    """Declare the decorated class or function as component ``name`` of ``kind``.

    The declaration is only a mark on the object; :func:`register_declared`
    registers it, inside the hook of the plugin whose module defines it.
    Stack the decorator to register one object under several names.
    """
    if kind not in KINDS:
        raise RegistryError(f"'{kind}' is not a kind of component (kinds: {', '.join(KINDS)})")

    def declare(obj):
        # Stored in the object's own namespace: a subclass does not inherit its parent's declaration.
        own = obj.__dict__.get(_DECLARED) if isinstance(obj, type) else getattr(obj, _DECLARED, None)
        setattr(obj, _DECLARED, [*(own or []), (kind, name)])
        return obj

    return declare


def declared(module: ModuleType) -> list[tuple[str, str, Callable[..., Any]]]:
    """``(kind, name, object)`` of every :func:`component` defined in ``module`` (not merely imported there)."""
    found = []
    for obj in vars(module).values():
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        marks = obj.__dict__.get(_DECLARED) if isinstance(obj, type) else getattr(obj, _DECLARED, None)
        for kind, name in marks or ():
            found.append((kind, name, obj))
    return found


def register_declared(registry: Callable[[str], Registry], *modules: ModuleType) -> None:
    """Register every :func:`component` of ``modules`` in ``registry(kind)`` (a plugin hook's argument)."""
    for module in modules:
        for kind, name, obj in declared(module):
            registry(kind).register(name, obj)
