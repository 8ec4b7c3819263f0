"""List registered components with their arguments and defaults.

    gankit list                 every kind
    gankit list generators      one kind
    gankit list losses 'b*'     names matching a pattern
"""

NAME = "list"
HELP = "list registered components, their arguments and defaults"


def add_arguments(parser) -> None:
    parser.add_argument("kind", nargs="?", help="generators, discriminators, losses, datasets, metrics, ...")
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern")


def _arguments(obj) -> str:
    import inspect

    from gankit.recipe.components import signature_of

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


def run(args) -> int:
    from gankit.plugins import get_host

    host = get_host()
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
    return 0
