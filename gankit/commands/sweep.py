"""Run a recipe over a grid of settings × seeds, each run an ordinary `gankit run`.

    gankit sweep recipes/quickstart.yaml --grid loss.name=bce,hinge --seeds 3 --jobs 2 --out runs/sweeps/loss
    gankit sweep recipes/quickstart.yaml train.steps=200 --grid optim.g.lr=1e-4,2e-4 --seed-list 1,2,3
    gankit sweep --resume runs/sweeps/loss          # finish what is left (finished runs are not rerun)
    gankit sweep recipes/quickstart.yaml --grid loss.name=bce,hinge --seeds 3 --wandb-sweep wandb_sweep.yaml

Runs = the cross product of the --grid axes × the seeds (--seeds N: the
recipe's seed and the N-1 after it). Plain key=value overrides apply to
every run. Every combination is validated before anything runs. Each run is
`gankit run` in its own process (K at a time with --jobs K, OMP_NUM_THREADS
= cores // K; with GPUs one per job), with its own run directory under
DIR/runs/, its output in DIR/logs/, its wandb run in group NAME with
sweep=NAME and its seed in the config. DIR/sweep.yaml names each run, its
settings and status. Ctrl-C stops the running jobs cleanly (each saves a
checkpoint); --resume continues them. A failed run is recorded with its
error and the sweep goes on. Compare with: gankit compare DIR.

--wandb-sweep FILE writes the same grid as a wandb sweep configuration
(method grid, command `gankit run RECIPE ... ${args_no_hyphens}`) for
`wandb sweep FILE` and `wandb agent`, and runs nothing here.

Exit code: 0 when every run finished, 1 when some failed, 2 for a mistake
in the sweep, 130 (143) when stopped by Ctrl-C (SIGTERM).
"""

from __future__ import annotations

NAME = "sweep"
HELP = "run a recipe over a grid of settings x seeds (locally, or as a wandb sweep file)"


def _intermixed(parser) -> None:
    """Let overrides come after options too (`gankit sweep R --grid a=1,2 train.steps=20 --jobs 2`)."""
    plain = parser.parse_known_args
    busy: list[bool] = []

    def parse_known_args(args=None, namespace=None):
        if busy:  # parse_known_intermixed_args calls parse_known_args itself
            return plain(args, namespace)
        busy.append(True)
        try:
            return parser.parse_known_intermixed_args(args, namespace)
        finally:
            busy.pop()

    parser.parse_known_args = parse_known_args


def add_arguments(parser) -> None:
    parser.add_argument("recipe", nargs="?", help="recipe YAML file")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="overrides for every run, e.g. train.steps=20")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="an axis of the grid (repeat for more axes); values parse as YAML, "
                             "commas inside [...] do not split")
    parser.add_argument("--seeds", type=int, metavar="N",
                        help="N seeds per setting: the recipe's seed and the next N-1")
    parser.add_argument("--seed-list", metavar="1,2,3", help="these seeds per setting")
    parser.add_argument("--jobs", type=int, default=1, metavar="K", help="runs at a time (default 1)")
    parser.add_argument("--out", metavar="DIR", help="the sweep directory (default: <out_dir>/sweeps/<name>)")
    parser.add_argument("--name", help="the sweep's name: the wandb group and `sweep` (default: --out's folder name, "
                                       "else <recipe name>-<time>)")
    parser.add_argument("--resume", metavar="DIR", help="continue the sweep in DIR: unfinished runs are run, "
                                                        "interrupted ones resumed")
    parser.add_argument("--wandb-sweep", metavar="FILE.yaml", help="write a wandb sweep configuration; run nothing")
    _intermixed(parser)


def run(args) -> int:
    from pathlib import Path

    from gankit.core.errors import GankitError
    from gankit.runs.sweep import describe, plan, read_sweep, sha256, write_sweep
    from gankit.runs.sweep_exec import run_sweep

    if args.jobs < 1:
        raise GankitError(f"--jobs {args.jobs}: give at least 1")
    if args.resume:
        given = [n for n, v in (("a recipe", args.recipe), ("--grid", args.grid), ("--seeds", args.seeds),
                                ("--seed-list", args.seed_list), ("--out", args.out), ("--name", args.name),
                                ("--wandb-sweep", args.wandb_sweep)) if v]
        if given:
            raise GankitError(f"--resume continues the sweep as it was planned; drop {', '.join(given)}")
        sweep = read_sweep(args.resume)
        if not Path(sweep.recipe).is_file():
            raise GankitError(f"the sweep's recipe {sweep.recipe} is gone; put it back to continue the sweep")
        if sweep.recipe_sha256 and sha256(Path(sweep.recipe)) != sweep.recipe_sha256:
            raise GankitError(f"{sweep.recipe} changed since the sweep started, so new runs would not match the "
                              "finished ones; restore it, or start a new sweep")
        print(describe(sweep), flush=True)
        return run_sweep(sweep, args.jobs)
    if not args.recipe:
        raise GankitError("give a recipe file (gankit sweep RECIPE.yaml --grid KEY=V1,V2 ...) or --resume DIR")
    sweep = plan(args.recipe, args.overrides, args.grid, args.seeds, args.seed_list, args.out, args.name)
    print(describe(sweep), flush=True)
    if args.wandb_sweep:
        from gankit.runs.wandb_sweep import write_wandb_sweep

        path = write_wandb_sweep(sweep, args.recipe, args.wandb_sweep)
        print(f"wandb sweep configuration: {path}\nstart it with: wandb sweep {path}   then: wandb agent "
              "ENTITY/PROJECT/SWEEP_ID (the id `wandb sweep` prints)")
        return 0
    write_sweep(sweep)
    return run_sweep(sweep, args.jobs)
