"""Plugin loading: built-ins, installed entry points, and recipe-named modules.

gankit's own components register through the same hook as third-party ones.
Installed packages that declare ``[project.entry-points.gankit]`` load
automatically unless ``GANKIT_DISABLE_PLUGIN_AUTOLOAD=1``;
``GANKIT_DISABLE_PLUGINS=name,name`` leaves out single ones. A recipe's
``plugins:`` list adds modules or ``.py`` files for one run.

A broken plugin is named in the error, whatever it does wrong: raising (or
calling ``sys.exit``) on import (with the file and line inside the plugin),
a hook with arguments the spec does not have, a component name or plugin
name that is already taken, raising while it registers. A broken *installed*
plugin does not stop gankit: it is left out, listed by ``gankit plugins``,
and named when a recipe asks for a component nobody registered. A plugin
that registers nothing gets a warning (usually a missing ``@gankit.hookimpl``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pluggy

from gankit.core import builtin, fileplugins, hookspecs
from gankit.core.errors import PluginError, RegistryError, did_you_mean
from gankit.core.registry import KINDS, Registry, registering_as
from gankit.core.version import __version__

ENTRY_POINT_GROUP = "gankit"
AUTOLOAD_ENV = "GANKIT_DISABLE_PLUGIN_AUTOLOAD"
DISABLE_ENV = "GANKIT_DISABLE_PLUGINS"  # comma-separated entry-point names to leave out
# What importing a plugin may raise that must not end gankit: everything but Ctrl-C.
IMPORT_FAILURES = (Exception, SystemExit)


class PluginWarning(UserWarning):
    """Something about a plugin worth a line on the console (the CLI prints it as ``warning: ...``)."""


@dataclass
class PluginInfo:
    """What ``gankit plugins`` shows for one plugin."""

    name: str
    version: str
    origin: str  # "built-in", "entry point <dist>", "recipe"
    registered: dict[str, list[str]] = field(default_factory=dict)  # kind -> names


def autoload_enabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() in ("", "0", "false", "no")


def disabled_plugins() -> set[str]:
    """The entry-point names ``GANKIT_DISABLE_PLUGINS`` leaves out."""
    return {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}


def import_failure(what: str, exc: BaseException, file: str | Path | None = None) -> str:
    """``"<what> failed to import: Type: message (at parts.py:12)"``: the last frame inside the plugin.

    ``file`` is the plugin's own file (or package folder); without one, the
    last frame of the traceback.
    """
    where = None
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{exc.filename}:{exc.lineno}"
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        if file is not None:
            root = str(Path(file).resolve())
            inside = [f for f in frames if str(Path(f.filename).resolve()).startswith(root)]
            frames = inside or frames
        if frames:
            where = f"{frames[-1].filename}:{frames[-1].lineno}"
    return f"{what} failed to import: {type(exc).__name__}: {exc}" + (f" (at {where})" if where else "")


def _plugin_root(module_or_spec) -> str | None:
    """The file or package folder of an importable plugin, for naming the frame inside it."""
    origin = getattr(module_or_spec, "origin", None) or getattr(module_or_spec, "__file__", None)
    if not origin:
        return None
    path = Path(origin)
    return str(path.parent if path.name == "__init__.py" else path)


class PluginHost:
    """A pluggy PluginManager plus the registries its plugins fill."""

    def __init__(self, autoload: bool | None = None):
        self.pm = pluggy.PluginManager("gankit")
        self.pm.add_hookspecs(hookspecs)
        self.registries = {kind: Registry(kind) for kind in KINDS}
        self.plugins: dict[str, PluginInfo] = {}
        self.broken: dict[str, str] = {}  # installed plugins left out: name -> what went wrong
        self.disabled: list[str] = []  # installed plugins left out by GANKIT_DISABLE_PLUGINS
        self.autoload = autoload_enabled() if autoload is None else autoload
        self._file_plugins: dict[str, str] = {}  # sha256 of a plugin file's contents -> its plugin name
        self.add(builtin, "gankit", __version__, "built-in")
        if self.autoload:
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

    def why_missing(self) -> str:
        """What may explain an unregistered name: plugins left out (broken, disabled, autoload off)."""
        lines = [f"    broken installed plugin '{name}' was not loaded: {msg}" for name, msg in self.broken.items()]
        if self.disabled:
            lines.append(f"    left out by {DISABLE_ENV}: {', '.join(self.disabled)}")
        if not self.autoload:
            lines.append(f"    installed plugins are not loaded ({AUTOLOAD_ENV} is set): the DCGAN plugin and "
                         f"others register nothing; unset it, or name the plugin in the recipe's plugins: list")
        return "\n".join(lines)

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
        if not info.registered:
            warnings.warn(_registers_nothing(name, origin, module, bool(impls)), PluginWarning, stacklevel=2)
        self.plugins[name] = info
        return info

    def _forget(self, module: ModuleType) -> None:
        if self.pm.is_registered(module):
            self.pm.unregister(module)

    def load_entry_points(self) -> None:
        """Load every installed package of the ``gankit`` entry-point group.

        A package that fails to import or to register is left out and
        recorded in :attr:`broken` (``gankit plugins`` lists it); the others
        load. Commands that do not need it keep working.
        """
        disabled = disabled_plugins()
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            if ep.name in disabled:
                self.disabled.append(ep.name)
                continue
            try:
                module = ep.load()
            except IMPORT_FAILURES as exc:
                spec = importlib.util.find_spec(ep.module.split(".")[0]) if _importable(ep.module) else None
                self.broken[ep.name] = import_failure(
                    f"plugin '{ep.name}' (entry point of package {dist} {version})", exc, _plugin_root(spec))
                continue
            try:
                self.add(module, ep.name, version, f"entry point of {dist}")
            except (PluginError, RegistryError) as exc:
                self.broken[ep.name] = f"{exc} (package {dist} {version})"

    def load(self, spec: str, base_dir: Path | None = None) -> PluginInfo:
        """Load a recipe-named plugin: an importable module name or a ``.py`` file.

        A file is found relative to ``base_dir`` (the recipe's folder) first,
        then the working directory. Two files with the same contents are the
        same plugin (a run's copy of its plugin and the original).
        """
        if spec.endswith(".py") or os.sep in spec or "/" in spec:
            path = resolve_plugin_file(spec, base_dir)
            digest = fileplugins.sha256(path)
            if digest in self._file_plugins:
                return self.plugins[self._file_plugins[digest]]
            name = str(path)
            if name in self.plugins:  # the same path, edited since it was loaded: keep the loaded one
                return self.plugins[name]
            try:
                module = importlib.import_module(fileplugins.module_name(path))
            except IMPORT_FAILURES as exc:
                raise PluginError(import_failure(f"plugin file '{spec}'", exc, path)) from None
            info = self.add(module, name, "local", "recipe")
            self._file_plugins[digest] = name
            return info
        if spec in self.plugins:
            return self.plugins[spec]
        try:
            module = importlib.import_module(spec)
        except IMPORT_FAILURES as exc:
            root = _plugin_root(importlib.util.find_spec(spec.split(".")[0])) if _importable(spec) else None
            raise PluginError(import_failure(f"plugin module '{spec}'", exc, root)) from None
        return self.add(module, spec, _module_version(module), "recipe")


def resolve_plugin_file(spec: str, base_dir: Path | None = None) -> Path:
    """The absolute path of a recipe's plugin file: relative to ``base_dir``, else the working directory."""
    path = Path(spec).expanduser()
    if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
        path = base_dir / path
    if not path.is_file():
        where = f" (looked in {base_dir} and the working directory)" if base_dir is not None else ""
        raise PluginError(f"plugin file '{spec}' does not exist{where}")
    return path.resolve()


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def _registers_nothing(name: str, origin: str, module: ModuleType, has_hook: bool) -> str:
    """The warning for a plugin that registered no component, with its most likely cause."""
    head = f"plugin '{name}' ({origin}) registered nothing"
    if not has_hook and callable(getattr(module, "gankit_register", None)):
        return (head + ": its gankit_register function is not decorated with @gankit.hookimpl, so gankit "
                "never calls it; add the decorator")
    if not has_hook:
        return head + ": it has no @gankit.hookimpl gankit_register(registry) function"
    return head + ": its gankit_register hook ran but registered no component"


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
