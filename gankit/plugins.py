"""Plugin loading: built-ins, installed entry points, and recipe-named modules.

gankit's own components register through the same hook as third-party ones.
Installed packages that declare ``[project.entry-points.gankit]`` load
automatically unless ``GANKIT_DISABLE_PLUGIN_AUTOLOAD=1``; a recipe's
``plugins:`` list adds modules or ``.py`` files for one run.

A broken plugin is named in the error, whatever it does wrong: raising (or
calling ``sys.exit``) on import, a hook with arguments the spec does not have,
a component name or plugin name that is already taken, raising while it
registers. With autoload on, every broken installed plugin is listed, each
with its package and version.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pluggy

from gankit import hookspecs
from gankit.errors import PluginError, RegistryError, did_you_mean
from gankit.registry import KINDS, Registry, registering_as

ENTRY_POINT_GROUP = "gankit"
AUTOLOAD_ENV = "GANKIT_DISABLE_PLUGIN_AUTOLOAD"
# What importing a plugin may raise that must not end gankit: everything but Ctrl-C.
IMPORT_FAILURES = (Exception, SystemExit)


@dataclass
class PluginInfo:
    """What ``gankit plugins`` shows for one plugin."""

    name: str
    version: str
    origin: str  # "built-in", "entry point <dist>", "recipe"
    registered: dict[str, list[str]] = field(default_factory=dict)  # kind -> names


def autoload_enabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() in ("", "0", "false", "no")


class PluginHost:
    """A pluggy PluginManager plus the registries its plugins fill."""

    def __init__(self, autoload: bool | None = None):
        self.pm = pluggy.PluginManager("gankit")
        self.pm.add_hookspecs(hookspecs)
        self.registries = {kind: Registry(kind) for kind in KINDS}
        self.plugins: dict[str, PluginInfo] = {}
        from gankit import __version__, builtins

        self.add(builtins, "gankit", __version__, "built-in")
        if autoload_enabled() if autoload is None else autoload:
            self.load_entry_points()

    def registry(self, kind: str) -> Registry:
        try:
            return self.registries[kind]
        except KeyError:
            close = did_you_mean(kind, KINDS)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise RegistryError(
                f"'{kind}' is not a kind of component{hint} (kinds: {', '.join(KINDS)})"
            ) from None

    # -- loading -----------------------------------------------------------------
    def add(self, module: ModuleType, name: str, version: str, origin: str) -> PluginInfo:
        """Register ``module`` as plugin ``name`` and run its registration hook."""
        if self.pm.is_registered(module):  # loaded already, maybe under another name (entry point vs recipe)
            return self.plugins[self.pm.get_name(module)]
        if name in self.plugins:
            first = self.plugins[name]
            raise PluginError(
                f"plugin name '{name}' is taken twice: by {first.origin} ({first.version}) and by {origin} ({version}); "
                "rename one of the entry points"
            )
        try:
            self.pm.register(module, name=name)
            self.pm.check_pending()  # a misspelt hook name fails here, loudly
        except (pluggy.PluginValidationError, ValueError) as exc:
            self._forget(module)
            raise PluginError(f"plugin '{name}' ({origin}) is not a valid gankit plugin: {exc}") from None
        info = PluginInfo(name, version, origin)
        before = {k: set(r.list()) for k, r in self.registries.items()}
        impls = [i for i in self.pm.hook.gankit_register.get_hookimpls() if i.plugin is module]
        offered = {"registry": self.registry}  # the hookspec's arguments; a hook may take fewer
        try:
            with registering_as(name):
                for impl in impls:
                    impl.function(**{arg: offered[arg] for arg in impl.argnames})
        except RegistryError:
            self._forget(module)
            raise
        except IMPORT_FAILURES as exc:
            self._forget(module)
            raise PluginError(
                f"plugin '{name}' ({origin}) failed while registering: {type(exc).__name__}: {exc}"
            ) from None
        for kind, reg in self.registries.items():
            new = sorted(set(reg.list()) - before[kind])
            if new:
                info.registered[kind] = new
        self.plugins[name] = info
        return info

    def _forget(self, module: ModuleType) -> None:
        if self.pm.is_registered(module):
            self.pm.unregister(module)

    def load_entry_points(self) -> None:
        """Load every installed package of the ``gankit`` entry-point group.

        One broken package does not stop the others from loading, nor hide
        another broken one: the error lists each, with its package.
        """
        broken: list[tuple[str, str]] = []  # (message, package)
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            try:
                module = ep.load()
            except IMPORT_FAILURES as exc:
                broken.append((f"plugin '{ep.name}' (entry point of package {dist} {version}) failed to import: "
                               f"{type(exc).__name__}: {exc}", dist))
                continue
            try:
                self.add(module, ep.name, version, f"entry point of {dist}")
            except (PluginError, RegistryError) as exc:
                broken.append((str(exc), dist))
        if broken:
            packages = ", ".join(dict.fromkeys(d for _, d in broken))
            head = "an installed plugin is broken" if len(broken) == 1 else f"{len(broken)} installed plugins are broken"
            raise PluginError(
                f"{head}:\n" + "\n".join(f"  {msg}" for msg, _ in broken)
                + f"\n    fix or uninstall {packages}, or set {AUTOLOAD_ENV}=1 to skip installed plugins"
            )

    def load(self, spec: str, base_dir: Path | None = None) -> PluginInfo:
        """Load a recipe-named plugin: an importable module name or a ``.py`` file."""
        if spec.endswith(".py") or os.sep in spec or "/" in spec:
            path = Path(spec).expanduser()
            if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
                path = base_dir / path
            if not path.is_file():
                raise PluginError(f"plugin file '{spec}' does not exist")
            path = path.resolve()
            name = str(path)
            if name in self.plugins:
                return self.plugins[name]
            # A unique module name per file so two files called plugin.py don't collide.
            digest = hashlib.sha1(name.encode()).hexdigest()[:8]
            mod_name = f"gankit_local_{path.stem}_{digest}"
            try:
                mod_spec = importlib.util.spec_from_file_location(mod_name, path)
                module = importlib.util.module_from_spec(mod_spec)
                sys.modules[mod_name] = module
                mod_spec.loader.exec_module(module)
            except IMPORT_FAILURES as exc:
                sys.modules.pop(mod_name, None)
                raise PluginError(
                    f"plugin file '{spec}' failed to import: {type(exc).__name__}: {exc}"
                ) from None
            return self.add(module, name, "local", "recipe")
        if spec in self.plugins:
            return self.plugins[spec]
        try:
            module = importlib.import_module(spec)
        except IMPORT_FAILURES as exc:
            raise PluginError(f"plugin module '{spec}' failed to import: {type(exc).__name__}: {exc}") from None
        return self.add(module, spec, _module_version(module), "recipe")


def _module_version(module: ModuleType) -> str:
    top = module.__name__.split(".")[0]
    for dist in importlib.metadata.packages_distributions().get(top, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return getattr(module, "__version__", "local")


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, created (and autoloaded) on first use."""
    global _host
    if _host is None:
        _host = PluginHost()
    return _host


def reset_host() -> None:
    """Forget every loaded plugin; the next :func:`get_host` starts afresh."""
    global _host
    _host = None


def registry(kind: str) -> Registry:
    """The registry of one kind of component: ``generators``, ``losses``, ..."""
    return get_host().registry(kind)
