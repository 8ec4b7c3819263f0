"""List registered components with their arguments and defaults.

    gankit list                 every kind
    gankit list generators      one kind
    gankit list losses 'b*'     names matching a pattern
    gankit list --recipe R.yaml with the plugins the recipe names
"""

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


def run(args) -> int:
    from gankit.core.plugins import get_host

    host = get_host()
    if args.recipe:
        from gankit.recipe.load import load_recipe_plugins

        load_recipe_plugins(args.recipe, host)
    kinds = [args.kind] if args.kind else list(host.registries)
    for kind in kinds:
        reg = host.registry(kind)
        print(f"{kind}:")
        names = reg.list(args.pattern)
        if not names:
            print("    (none)")
        for name in names:
            entry = reg.entry(name)
            print(f"    {name}{_arguments(entry.obj)}    [{entry.plugin}]")
            summary = _summary(entry.obj)
            if summary:
                print(f"        {summary}")
    return 0
