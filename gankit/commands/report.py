"""Write one self-contained HTML page about a run (viewable offline, no external files).

    gankit report runs/quickstart/20261130-120000-ab12
    gankit report runs/quickstart/20261130-120000-ab12 --out quickstart.html

The page holds the final metrics with their provenance, the metric and loss
curves, the fixed-noise sample grids over time, the events and the resolved
recipe. By default it is written to <run dir>/report.html.
"""

NAME = "report"
HELP = "write a self-contained HTML report of a run"


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    parser.add_argument("--out", metavar="FILE.html", help="where to write the page (default: RUN_DIR/report.html)")


def run(args) -> int:
    from pathlib import Path

    from gankit.errors import GankitError
    from gankit.loggers.compare import is_run_dir, load_run
    from gankit.loggers.report import write_report

    path = Path(args.run_dir)
    if not path.is_dir() or not is_run_dir(path):
        raise GankitError(f"'{path}' is not a gankit run directory (no recipe.yaml or metrics.jsonl in it)")
    out = write_report(load_run(path), Path(args.out) if args.out else path / "report.html")
    print(f"report: {out}")
    return 0
