"""List every plugin, its version, where it came from and what it registered, and the broken ones.

Installed plugins (entry-point group ``gankit``) load unless
GANKIT_DISABLE_PLUGIN_AUTOLOAD=1; GANKIT_DISABLE_PLUGINS=name,name leaves out
single ones. A broken installed plugin is listed with its error and left
out; every other command keeps working without it.
"""

NAME = "plugins"
HELP = "list plugins and what they registered"


def add_arguments(parser) -> None:
    parser.add_argument("--recipe", help="also load the plugins a recipe names")


def run(args) -> int:
    from gankit.core.plugins import AUTOLOAD_ENV, DISABLE_ENV, get_host

    host = get_host()
    if args.recipe:
        from gankit.recipe import load_recipe

        load_recipe(args.recipe)
    for info in host.plugins.values():
        print(f"{info.name} {info.version}  ({info.origin})")
        for kind, names in info.registered.items():
            print(f"    {kind}: {', '.join(names)}")
    for name, error in host.broken.items():
        print(f"{name}  (broken, not loaded)\n    {error}")
    if host.disabled:
        print(f"(left out by {DISABLE_ENV}: {', '.join(host.disabled)})")
    if not host.autoload:
        print(f"(installed plugins not loaded: {AUTOLOAD_ENV} is set)")
    return 0
