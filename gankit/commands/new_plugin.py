"""Write a new plugin package: a working generator, discriminator and loss, a recipe, tests.

    gankit new-plugin my_gan --dir plugins
    pip install -e 'plugins/my_gan[test]'  # [test]: pytest too; offline: add --no-deps --no-build-isolation
    gankit plugins                         # my_gan and what it registered
    cd plugins/my_gan && gankit run recipes/my_gan_digits.yaml && python -m pytest

The printed hint names the programs of the environment that ran it
(``.venv/bin/gankit`` after the README's set-up, when nothing is activated).

docs/writing-a-plugin.md walks through the files.
"""

NAME = "new-plugin"
HELP = "write a new plugin package to start from"


def add_arguments(parser) -> None:
    parser.add_argument("name", help="the plugin's name, also its components' (lowercase, e.g. my_gan)")
    parser.add_argument("--dir", default=".", help="folder in which to create the plugin's folder (default: .)")


def run(args) -> int:
    from gankit.templates import create_plugin, next_steps

    target, files = create_plugin(args.name, args.dir)
    print(f"created plugin '{target.name}' in {target}/")
    for path in files:
        print(f"    {path.relative_to(target)}")
    print("next:")
    for line in next_steps(target):
        print(f"    {line}")
    return 0
