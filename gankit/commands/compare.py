"""Compare runs: a table of what differs and how they did, and a plot against step.

    gankit compare runs/quickstart/20261130-120000-ab12 runs/quickstart/20261130-130000-cd34
    gankit compare runs/quickstart --metric swd --out cmp.png --grids grids.png
    gankit compare runs/sweeps/loss                        # a sweep: grouped by its grid axes
    gankit compare runs/sweeps/loss --baseline loss.name=bce --ci bootstrap
    gankit compare runs/ --group-by loss.name,optim.g.lr

Arguments are run directories, sweep directories or folders of runs (found
recursively). Without groups: one row per run (its status, the ~8 settings
that tell the most runs apart, and how many more differ, steps, final
metrics, images/s), at most 150 characters wide; the plot names each run by
its short id and the setting that tells it apart, and draws runs together
only where they are comparable (a panel per set measured alike, and per kind
of loss). With groups (--group-by,
or a sweep's grid axes): one row per group of finished runs, per metric the
mean of the runs' final values (each run's last evaluation) with its 95%
interval (Student t over seeds, or --ci bootstrap, seeded), best and worst;
--baseline KEY=VALUE adds each other group's difference of means, its
interval, Welch's p-value and a verdict. Values are compared only when they
were measured alike (extractor, weights, sample counts, reference set).
Metric columns say which way is better (fid↓, is↑).

The plot goes to ``--out``, else beside the runs: ``compare.png`` in the
sweep directory, or in the folder that holds all the runs (the path is
printed); ``--grids`` beside it.
"""

from __future__ import annotations

import os

NAME = "compare"
HELP = "compare runs or groups of runs (sweeps): tables with intervals, a plot against step"


def add_arguments(parser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_OR_DIR",
                        help="run directories, sweep directories or folders of runs")
    parser.add_argument("--metric", help="the metric to plot and list first (default: the first metric every run has)")
    parser.add_argument("--out", metavar="FILE.png",
                        help="the plot (default: compare.png in the sweep directory, or in the folder holding the runs)")
    parser.add_argument("--group-by", metavar="KEY[,KEY]",
                        help="group runs by these recipe keys (default for a sweep: its grid axes; none: per run)")
    parser.add_argument("--baseline", metavar="KEY=VALUE", help="compare every other group with this one")
    parser.add_argument("--ci", choices=("t", "bootstrap"), default="t",
                        help="95%% interval of a group's mean: Student t (default) or a bootstrap")
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (default 0)")
    parser.add_argument("--grids", nargs="?", const=True, metavar="FILE.png",
                        help="also write the last sample grid of each run (each group's median run) side by side "
                             "(default file: grids.png beside the plot)")


def default_out(selection):
    """Where the plot goes without --out: the sweep directory named, else the folder that holds every run."""
    from pathlib import Path

    from gankit.core.errors import GankitError

    if len(selection.sweeps) == 1 and all(r.path.resolve().is_relative_to(selection.sweeps[0].resolve())
                                          or r.sweep_status is not None for r in selection.runs):
        return selection.sweeps[0] / "compare.png"
    parents = [r.path.resolve().parent for r in selection.runs]
    common = Path(os.path.commonpath(parents))
    if common == Path(common.anchor):
        raise GankitError("these runs share no folder to put the plot beside; give --out FILE.png")
    return _relative(common / "compare.png")


def _relative(path):
    """``path`` as the user would type it: relative to the working directory when inside it."""
    from pathlib import Path

    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _written(write, path, given):
    """``write()``; a folder that cannot be written to is a user error naming the file (and --out, if not given)."""
    from gankit.core.errors import GankitError

    try:
        return write()
    except OSError as exc:
        hint = "" if given else "; give --out FILE.png (and --grids FILE.png) somewhere writable"
        raise GankitError(f"cannot write '{path}': {exc.strerror or exc}{hint}") from None


def run(args) -> int:
    import textwrap
    from pathlib import Path

    from gankit.core.errors import GankitError
    from gankit.runs import groups as G
    from gankit.runs import plots
    from gankit.runs.compare import TABLE_WIDTH, format_table, hidden_note, run_table, select_runs
    from gankit.runs.settings import legend_labels

    selection = select_runs(args.runs)
    out = Path(args.out) if args.out else default_out(selection)
    grids_out = None if not args.grids else out.with_name("grids.png") if args.grids is True else Path(args.grids)
    if grids_out is not None and os.path.abspath(grids_out) == os.path.abspath(out):
        raise GankitError(f"--grids {grids_out} and --out {out} name the same file: the grids would replace "
                          "the plot; give one of them another name, e.g. --grids grids.png --out curves.png")
    c = G.build(selection, args.metric, args.group_by, args.baseline, args.ci, args.seed)
    if not c.keys:
        table = run_table(c.runs, c.metric)
        print(format_table(table.header, table.rows))
        note = hidden_note(table)
        if note:
            print(note)
        out = _written(lambda: plots.plot_runs(c.runs, c.metric, out), out, args.out)
        grids = [(label, r.samples[-1]) for label, r in zip(legend_labels(c.runs), c.runs) if r.samples]
    else:
        print(G.describe(c.groups, c.keys, c.method, c.metrics))
        print(format_table(*G.group_table(c.groups, c.metrics, c.method, c.seed)))
        if c.base is not None:
            print(f"\nbaseline: {c.base.label} (difference = group mean - baseline mean)")
            print(format_table(*G.baseline_table(c.groups, c.base, c.metrics, c.method, c.seed)))
        out = _written(lambda: plots.plot_groups(c.groups, c.metric, out), out, args.out)
        grids = [(caption, r.samples[-1]) for caption, r in G.median_grids(c)]
    for note in c.notes:  # wrapped like the table: a note names runs and commands, often past 150 characters
        print(textwrap.fill(f"note: {note}", TABLE_WIDTH, subsequent_indent="      ", break_long_words=False,
                            break_on_hyphens=False))
    print(f"\nplot: {out}")
    if grids_out is not None:
        if not grids:
            raise GankitError("--grids: none of these runs has a sample grid (samples/step_*.png)")
        print(f"grids: {_written(lambda: plots.grid_montage(grids, grids_out), grids_out, args.grids)}")
    return 0
