"""List the runs under a folder: one line per run, found recursively.

    gankit runs                    # under runs/
    gankit runs runs/sweeps/loss

Each line, oldest first: the run directory relative to DIR (it ends with
the run id), recipe name, status (finished, interrupted, failed,
diverged, or running/killed when the run has not recorded its end), steps
trained, the best FID (else the best of the first metric the run recorded)
and the overrides it was started with (out_dir left out). A run directory
holds recipe.yaml with metrics.jsonl or checkpoints/. Nothing is loaded but
those two small files.
"""

from __future__ import annotations

NAME = "runs"
HELP = "list the runs under a folder: id, recipe, status, steps, best metric, overrides"


def add_arguments(parser) -> None:
    parser.add_argument("dir", nargs="?", default="runs", metavar="DIR", help="where to look (default: runs)")


def run(args) -> int:
    from pathlib import Path

    from gankit.core.errors import GankitError
    from gankit.runs.compare import cell, format_table
    from gankit.rundir.record import PREFERRED_METRICS, is_run_dir, load_run, walk_runs

    root = Path(args.dir)
    if not root.is_dir():
        raise GankitError(f"'{root}' is not a folder; give the folder your runs are in (out_dir, default runs)")
    found = [root] if is_run_dir(root) else walk_runs(root)
    if not found:
        print(f"no runs under {root}")
        return 0
    rows = []
    for path in found:
        run = load_run(path)
        metrics = run.metrics
        metric = next((m for m in PREFERRED_METRICS if m in metrics), metrics[0] if metrics else None)
        best = f"{metric} {cell(run.best(metric))}" if metric else "-"
        overrides = " ".join(o for o in run.overrides if not o.startswith("out_dir=")) or "-"
        where = str(path.relative_to(root)) if path != root else str(path)  # ends with the run id
        rows.append((run.id, [where, run.name, run.status, str(run.digest().steps), best, overrides]))
    rows = [r for _, r in sorted(rows, key=lambda ir: ir[0])]  # run ids start with the time: oldest first
    print(format_table(["run", "recipe", "status", "steps", "best", "overrides"], rows))
    print(f"\n{len(rows)} run(s) under {root}")
    return 0
