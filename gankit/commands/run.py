"""Train a recipe, or continue a run.

    gankit run recipes/quickstart.yaml
    gankit run recipes/dcgan_celeba.yaml data.root=../shared/data/celeba_sample train.steps=3
    gankit run --resume runs/quickstart/20261130-120000-ab12 train.steps=2000

Ctrl-C (or SIGTERM) saves a checkpoint and exits with 130 (143); the run
resumes from it exactly. A second Ctrl-C stops at once (the last checkpoint
is kept). A run stopped by non-finite losses or gradients exits with 3
(``health.on_nonfinite: stop``); its last good checkpoint is kept. A mistake
in the recipe, the data or a plugin, or a full disk, exits with 2.
"""

from __future__ import annotations

import sys

NAME = "run"
HELP = "train a recipe (or --resume a run)"


def add_arguments(parser) -> None:
    parser.add_argument("recipe", nargs="?", help="recipe YAML file")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override recipe keys, e.g. train.steps=10")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run directory (or a checkpoint file)")


def _last_words(text: str) -> None:
    """Print the run's last line; a further Ctrl-C meanwhile must not turn it into a traceback."""
    import signal

    from gankit.core.processes import is_main_process

    if not is_main_process():  # under torchrun, rank 0 speaks for all
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        print(text, file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def run(args) -> int:
    from gankit.core.errors import GankitError
    from gankit.recipe import load_recipe
    from gankit.recipe.preflight import preflight
    from gankit.training.distributed import resume_command
    from gankit.training.nonfinite import TrainingStopped
    from gankit.training.state import prepare_resume
    from gankit.training.trainer import RunInterrupted, Trainer

    overrides = list(args.overrides)
    trainer = None
    try:
        if args.resume:
            if args.recipe:  # `gankit run --resume DIR a=b`: argparse saw a=b as the recipe
                overrides.insert(0, args.recipe)
            recipe, ckpt, run_dir = prepare_resume(args.resume, overrides)
            preflight(recipe, str(run_dir / "recipe.yaml"))
            trainer = Trainer(recipe, source=str(run_dir / "recipe.yaml"), overrides=overrides,
                              resume=ckpt, run_dir=run_dir)
        else:
            if not args.recipe:
                raise GankitError("give a recipe file (gankit run RECIPE.yaml) or --resume RUN_DIR")
            recipe = load_recipe(args.recipe, overrides)
            preflight(recipe, args.recipe)
            trainer = Trainer(recipe, source=args.recipe, overrides=overrides)
        run_dir = trainer.run()
    except (RunInterrupted, TrainingStopped) as exc:
        _last_words(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:  # Ctrl-C before training started, or a second one as the run was ending
        run_dir = getattr(trainer, "run_dir", None)
        kept = run_dir is not None and (run_dir / "checkpoints" / "last.pt").is_file()
        _last_words("interrupted (SIGINT): stopped at once" + (
            f", last checkpoint kept; resume with: {resume_command(run_dir)}" if kept else ""))
        return 130
    from gankit.core.processes import is_main_process

    if is_main_process():  # under torchrun, once
        print(f"run finished: {run_dir}", file=sys.stderr)
    return 0
