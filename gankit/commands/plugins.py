"""List every loaded plugin, its version, where it came from and what it registered.

Installed plugins (entry-point group ``gankit``) load unless
GANKIT_DISABLE_PLUGIN_AUTOLOAD=1.
"""

NAME = "plugins"
HELP = "list plugins and what they registered"


def add_arguments(parser) -> None:
    parser.add_argument("--recipe", help="also load the plugins a recipe names")


def run(args) -> int:
    from gankit.plugins import autoload_enabled, get_host

    host = get_host()
    if args.recipe:
        from gankit.recipe import load_recipe

        load_recipe(args.recipe)
    for info in host.plugins.values():
        print(f"{info.name} {info.version}  ({info.origin})")
        for kind, names in info.registered.items():
            print(f"    {kind}: {', '.join(names)}")
    if not autoload_enabled():
        print("(installed plugins not loaded: GANKIT_DISABLE_PLUGIN_AUTOLOAD is set)")
    return 0
