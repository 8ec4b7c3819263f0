"""Compare runs: a table of what differs and how they did, and a plot against step.

    gankit compare runs/quickstart/20261130-120000-ab12 runs/quickstart/20261130-130000-cd34
    gankit compare runs/quickstart --metric fid --out compare.png

The table lists each run, its recipe name, the recipe values that differ
between the runs, the steps trained, final and best FID/IS/KID (where
evaluated) and images/s; the PNG plots the metric and both losses against
step. A folder of runs stands for every run in it.
"""

NAME = "compare"
HELP = "compare runs: a table and a plot of metric and losses against step"


def add_arguments(parser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (or folders of runs)")
    parser.add_argument("--metric", default="fid", help="the evaluation metric to plot and list first (default: fid)")
    parser.add_argument("--out", default="compare.png", metavar="FILE.png", help="the plot (default: compare.png)")


def run(args) -> int:
    from gankit.loggers.compare import find_runs, format_table, load_run, plot_runs, table_rows

    runs = [load_run(p) for p in find_runs(args.runs)]
    header, rows = table_rows(runs, args.metric)
    print(format_table(header, rows))
    out = plot_runs(runs, args.metric, args.out)
    print(f"\nplot: {out}")
    return 0
