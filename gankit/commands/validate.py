"""Validate a recipe (with overrides) and print it resolved, every default filled in.

    gankit validate recipes/dcgan_celeba.yaml train.steps=10
"""

NAME = "validate"
HELP = "check a recipe and print it resolved"


def add_arguments(parser) -> None:
    parser.add_argument("recipe", help="recipe YAML file")
    parser.add_argument("overrides", nargs="*", metavar="key=value")


def run(args) -> int:
    from gankit.recipe import load_recipe, resolved
    from gankit.recipe.load import dump

    recipe = load_recipe(args.recipe, args.overrides)
    print(f"# {args.recipe}: valid", flush=True)
    print(dump(resolved(recipe)), end="")
    return 0
