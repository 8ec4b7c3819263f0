"""Compare runs: a table of what differs and how they did, and a plot against step.

    gankit compare runs/quickstart/20261130-120000-ab12 runs/quickstart/20261130-130000-cd34
    gankit compare runs/quickstart --metric swd --out compare.png --grids grids.png
    gankit compare runs/sweeps/loss                        # a sweep: grouped by its grid axes
    gankit compare runs/sweeps/loss --baseline loss.name=bce --ci bootstrap
    gankit compare runs/ --group-by loss.name,optim.g.lr

Arguments are run directories, sweep directories or folders of runs (found
recursively). Without groups: one row per run (its status, the settings that
differ, steps, final and best metrics, images/s). With groups (--group-by,
or a sweep's grid axes): one row per group of finished runs, per metric the
mean of the runs' final values (each run's last evaluation) with its 95%
interval (Student t over seeds, or --ci bootstrap, seeded), best and worst;
--baseline KEY=VALUE adds each other group's difference of means, its
interval, Welch's p-value and a verdict. Values are compared only when they
were measured alike (extractor, weights, sample counts, reference set).
"""

from __future__ import annotations

import os

NAME = "compare"
HELP = "compare runs or groups of runs (sweeps): tables with intervals, a plot against step"


def add_arguments(parser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_OR_DIR",
                        help="run directories, sweep directories or folders of runs")
    parser.add_argument("--metric", help="the metric to plot and list first (default: the first metric every run has)")
    parser.add_argument("--out", default="compare.png", metavar="FILE.png", help="the plot (default: compare.png)")
    parser.add_argument("--group-by", metavar="KEY[,KEY]",
                        help="group runs by these recipe keys (default for a sweep: its grid axes; none: per run)")
    parser.add_argument("--baseline", metavar="KEY=VALUE", help="compare every other group with this one")
    parser.add_argument("--ci", choices=("t", "bootstrap"), default="t",
                        help="95%% interval of a group's mean: Student t (default) or a bootstrap")
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (default 0)")
    parser.add_argument("--grids", nargs="?", const="grids.png", metavar="FILE.png",
                        help="also write the last sample grid of each run (each group's median run) side by side")


def run(args) -> int:
    from gankit.core.errors import GankitError
    from gankit.runs import groups as G
    from gankit.runs import plots
    from gankit.runs.compare import format_table, labels, select_runs, table_rows

    if args.grids and os.path.abspath(args.grids) == os.path.abspath(args.out):
        raise GankitError(f"--grids {args.grids} and --out {args.out} name the same file: the grids would replace "
                          "the plot; give one of them another name, e.g. --grids grids.png --out curves.png")
    c = G.build(select_runs(args.runs), args.metric, args.group_by, args.baseline, args.ci, args.seed)
    if not c.keys:
        print(format_table(*table_rows(c.runs, c.metric)))
        out = plots.plot_runs(c.runs, c.metric, args.out)
        grids = [(label, r.samples[-1]) for label, r in zip(labels(c.runs), c.runs) if r.samples]
    else:
        print(G.describe(c.groups, c.keys, c.method, c.metrics))
        print(format_table(*G.group_table(c.groups, c.metrics, c.method, c.seed)))
        if c.base is not None:
            print(f"\nbaseline: {c.base.label} (difference = group mean - baseline mean)")
            print(format_table(*G.baseline_table(c.groups, c.base, c.metrics, c.method, c.seed)))
        out = plots.plot_groups(c.groups, c.metric, args.out)
        grids = [(caption, r.samples[-1]) for caption, r in G.median_grids(c)]
    for note in c.notes:
        print(f"note: {note}")
    print(f"\nplot: {out}")
    if args.grids:
        if not grids:
            raise GankitError("--grids: none of these runs has a sample grid (samples/step_*.png)")
        print(f"grids: {plots.grid_montage(grids, args.grids)}")
    return 0
