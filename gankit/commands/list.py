"""List registered components with their arguments and defaults.

    gankit list                 every kind
    gankit list generators      one kind
    gankit list losses 'b*'     names matching a pattern
    gankit list --recipe R.yaml with the plugins the recipe names

Listing means importing every component, torch and all plugins with them:
seconds. So the listing is kept in ``$GANKIT_CACHE_DIR/list.json`` (default
``~/.cache/gankit``) under a fingerprint of what it depends on: gankit's and
the installed plugins' source files (path, size, modification time), their
entry points and versions, torch's version and the plugin environment
variables. The fingerprint is taken without importing a plugin, so a
listing that is still right prints in well under a second. A run of
``--recipe`` (plugins from files), or with a plugin that failed to load, is
never cached.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

CACHE_FORMAT = 1

NAME = "list"
HELP = "list registered components, their arguments and defaults"


def add_arguments(parser) -> None:
    parser.add_argument("kind", nargs="?", help="generators, discriminators, losses, datasets, metrics, ...")
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern")
    parser.add_argument("--recipe", help="also load the plugins a recipe names (its plugins: list)")


def _arguments(obj) -> str:
    import inspect

    from gankit.core.registry import signature_of

    sig = signature_of(obj)
    if sig is None:
        return "(...)"
    parts = []
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            parts.append(f"**{p.name}")
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    return "(" + ", ".join(parts) + ")"


def _summary(obj) -> str:
    """The first sentence of a component's docstring: what it is (for r1, its γ convention)."""
    import inspect

    doc = inspect.getdoc(obj) or ""
    if inspect.isclass(obj):
        # a class without a docstring of its own would show its base's: for an nn.Module, torch's
        # "Base class for all neural network modules", which says nothing about the component
        owner = next((c for c in obj.__mro__ if c.__dict__.get("__doc__")), None)
        if owner is None or owner.__module__.split(".")[0] in ("torch", "builtins", "abc", "typing"):
            doc = ""
    first = " ".join(doc.split("\n\n")[0].split())
    return first[:200] + ("..." if len(first) > 200 else "")


def _cache_path() -> Path:
    root = os.environ.get("GANKIT_CACHE_DIR", "").strip() or "~/.cache/gankit"  # as gankit.eval.cache, without torch
    return Path(root).expanduser() / "list.json"


def _fingerprint() -> str:
    """What the listing depends on, found without importing torch or any plugin."""
    import hashlib
    import importlib.metadata
    import importlib.util
    import sys

    from gankit.core.plugins import AUTOLOAD_ENV, DISABLE_ENV, ENTRY_POINT_GROUP
    from gankit.core.version import __version__

    h = hashlib.sha256()
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    h.update(repr((CACHE_FORMAT, __version__, sys.version, torch_version, os.environ.get(AUTOLOAD_ENV),
                   os.environ.get(DISABLE_ENV))).encode())
    roots = [Path(__file__).resolve().parents[1]]  # the gankit package
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        h.update(repr((ep.name, ep.value, ep.dist.name if ep.dist else None,
                       ep.dist.version if ep.dist else None)).encode())
        try:
            spec = importlib.util.find_spec(ep.module.split(".")[0])  # a top-level name: found, not imported
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            roots.append(Path(spec.origin).parent if spec.submodule_search_locations else Path(spec.origin))
    for root in roots:
        for f in [root] if root.is_file() else sorted(root.rglob("*.py")):
            st = f.stat()
            h.update(f"{f} {st.st_size} {st.st_mtime_ns}".encode())
    return h.hexdigest()


def _cached(key: str) -> dict | None:
    try:
        stored = json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stored.get("listing") if isinstance(stored, dict) and stored.get("key") == key else None


def _store(key: str, listing: dict) -> None:
    path = _cache_path()
    tmp = path.with_name(f".list.json.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"key": key, "listing": listing}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # a read-only home: list without a cache
        tmp.unlink(missing_ok=True)


def _listing(host) -> dict[str, list[list[str]]]:
    """kind -> [name, arguments, plugin, summary] for every registered component, sorted by name."""
    return {kind: [[entry.name, _arguments(entry.obj), entry.plugin, _summary(entry.obj)]
                   for entry in host.registry(kind).entries()] for kind in host.registries}


def run(args) -> int:
    import fnmatch

    listing = None
    if not args.recipe:
        key = _fingerprint()
        listing = _cached(key)
    if listing is None or (args.kind and args.kind not in listing):
        from gankit.core.plugins import get_host

        host = get_host()
        if args.recipe:
            from gankit.recipe.load import load_recipe_plugins

            load_recipe_plugins(args.recipe, host)
        if args.kind:
            host.registry(args.kind)  # an unknown kind: its did-you-mean error
        listing = _listing(host)
        if not args.recipe and not host.broken:
            _store(key, listing)
    for kind in [args.kind] if args.kind else list(listing):
        print(f"{kind}:")
        rows = [row for row in listing[kind] if fnmatch.fnmatchcase(row[0], args.pattern)]
        if not rows:
            print("    (none)")
        for name, arguments, plugin, summary in rows:
            print(f"    {name}{arguments}    [{plugin}]")
            if summary:
                print(f"        {summary}")
    return 0
