"""Validate a recipe (with overrides) and print it resolved, every default filled in.

    gankit validate recipes/dcgan_celeba.yaml train.steps=10

Beyond the recipe's keys, types and names, the generator and discriminator
are built and called on two images on the CPU: a model that fails, or whose
shapes do not fit the data, is named here. ``device: cuda`` on a machine
without CUDA is refused. A schedule that ends before the run does is warned
about (its final value would be held flat for the rest of the run).
"""

import sys

NAME = "validate"
HELP = "check a recipe and print it resolved"


def add_arguments(parser) -> None:
    parser.add_argument("recipe", help="recipe YAML file")
    parser.add_argument("overrides", nargs="*", metavar="key=value")


def run(args) -> int:
    from gankit.recipe import load_recipe, resolved
    from gankit.recipe.load import dump
    from gankit.recipe.preflight import preflight
    from gankit.recipe.schedules import schedule_warnings

    recipe = load_recipe(args.recipe, args.overrides)
    preflight(recipe, args.recipe)
    for warning in schedule_warnings(recipe):
        print(f"warning: {args.recipe}: {warning}", file=sys.stderr, flush=True)
    print(f"# {args.recipe}: valid", flush=True)
    print(dump(resolved(recipe)), end="")
    return 0
