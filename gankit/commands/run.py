"""Train a recipe, or continue a run.

    gankit run recipes/quickstart.yaml
    gankit run recipes/dcgan_celeba.yaml data.root=../shared/data/celeba_sample train.steps=3
    gankit run --resume runs/quickstart/20261130-120000-ab12 train.steps=2000

Ctrl-C (or SIGTERM) saves a checkpoint and exits with 130 (143); the run
resumes from it exactly.
"""

from __future__ import annotations

import sys

NAME = "run"
HELP = "train a recipe (or --resume a run)"


def add_arguments(parser) -> None:
    parser.add_argument("recipe", nargs="?", help="recipe YAML file")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override recipe keys, e.g. train.steps=10")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run directory (or a checkpoint file)")


def run(args) -> int:
    from gankit.errors import GankitError
    from gankit.recipe import load_recipe
    from gankit.train.loop import RunInterrupted, Trainer
    from gankit.train.resume import prepare_resume

    overrides = list(args.overrides)
    try:
        if args.resume:
            if args.recipe:  # `gankit run --resume DIR a=b`: argparse saw a=b as the recipe
                overrides.insert(0, args.recipe)
            recipe, ckpt, run_dir = prepare_resume(args.resume, overrides)
            trainer = Trainer(recipe, source=str(run_dir / "recipe.yaml"), overrides=overrides,
                              resume=ckpt, run_dir=run_dir)
        else:
            if not args.recipe:
                raise GankitError("give a recipe file (gankit run RECIPE.yaml) or --resume RUN_DIR")
            recipe = load_recipe(args.recipe, overrides)
            trainer = Trainer(recipe, source=args.recipe, overrides=overrides)
        run_dir = trainer.run()
    except RunInterrupted as exc:
        print(str(exc), file=sys.stderr)
        return exc.exit_code
    print(f"run finished: {run_dir}", file=sys.stderr)
    return 0
