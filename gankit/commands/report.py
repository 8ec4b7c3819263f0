"""Write one self-contained HTML page about a run, several runs, or a sweep (viewable offline).

    gankit report runs/quickstart/20261130-120000-ab12
    gankit report runs/quickstart/20261130-120000-ab12 runs/quickstart/20261130-130000-cd34 --out two.html
    gankit report runs/sweeps/loss --baseline loss.name=bce

One run: the final metrics with their provenance, the curves, the sample
grids over time, the events and the resolved recipe (default: RUN/report.html).
Several runs (or a folder of runs): the curves overlaid, the last grids side
by side, the settings that differ, each run's metrics with provenance and
the metrics it skipped with the command that fills them in (default:
report.html). A sweep directory (or --group-by): each group's mean and 95%
interval per metric, --baseline's differences and p-values, the groups' mean
curves with bands and the last grid of each group's median run (default:
SWEEP/report.html).
"""

NAME = "report"
HELP = "write a self-contained HTML report of a run, several runs or a sweep"


def add_arguments(parser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_OR_DIR",
                        help="a run directory, several, a sweep directory or a folder of runs")
    parser.add_argument("--out", metavar="FILE.html", help="where to write the page")
    parser.add_argument("--metric", help="the metric shown first (default: the first metric every run has)")
    parser.add_argument("--group-by", metavar="KEY[,KEY]", help="group runs by these recipe keys (sweeps: the grid)")
    parser.add_argument("--baseline", metavar="KEY=VALUE", help="compare every other group with this one")
    parser.add_argument("--ci", choices=("t", "bootstrap"), default="t", help="95%% interval: Student t or bootstrap")
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (default 0)")


def run(args) -> int:
    from pathlib import Path

    from gankit.runs.compare import select_runs
    from gankit.runs.groups import build
    from gankit.rundir.record import is_run_dir, is_sweep_dir, load_run
    from gankit.runs.report import write_report

    paths = [Path(p) for p in args.runs]
    single = len(paths) == 1 and paths[0].is_dir() and is_run_dir(paths[0]) and not args.group_by
    if single and not args.baseline:
        from gankit.runs.tutorial_plots import LOSSES, write_tutorial_plots

        if not (paths[0] / LOSSES).is_file():  # a run trained before gankit drew them, or still training
            write_tutorial_plots(paths[0])
        out = write_report(load_run(paths[0]), Path(args.out) if args.out else paths[0] / "report.html")
        print(f"report: {out}")
        return 0
    from gankit.runs.report_many import render_groups, render_runs

    c = build(select_runs(paths), args.metric, args.group_by, args.baseline, args.ci, args.seed)
    sweep = len(paths) == 1 and is_sweep_dir(paths[0])
    if c.keys:
        title = f"sweep {paths[0].name}" if sweep else f"{len(c.runs)} runs by {', '.join(c.keys)}"
        page = render_groups(c, title)
    else:
        page = render_runs(c)
    default = paths[0] / "report.html" if sweep else Path("report.html")
    out = write_report(page, Path(args.out) if args.out else default)
    print(f"report: {out}")
    return 0
