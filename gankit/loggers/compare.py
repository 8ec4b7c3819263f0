"""Comparing runs from their local records: a table and a plot against step.

Everything is read from run directories (``recipe.yaml`` and
``metrics.jsonl``), so runs compare the same whether or not wandb was on.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gankit.errors import GankitError
from gankit.loggers.local import read_metrics

# The quality metrics the table reports when runs have them (final and best values).
TABLE_METRICS = ("fid", "is", "kid")
# Metrics where larger is better; the rest (fid, kid, ...) are better when smaller.
HIGHER_IS_BETTER = {"is", "inception_score", "precision", "recall", "density", "coverage"}
# Keys of an eval row that are not provenance (they change with every evaluation).
ROW_KEYS = {"kind", "step", "time", "metric", "value", "std", "eval_seconds"}
# Recipe keys that never explain a difference between runs.
IGNORED_KEYS = ("gankit", "out_dir")


@dataclass
class RunRecord:
    """One run directory, read: its resolved recipe and its metrics rows."""

    path: Path
    recipe: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def name(self) -> str:
        return str(self.recipe.get("name", "?"))

    @property
    def train_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("kind") == "train"]

    @property
    def eval_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("kind") == "eval"]

    @property
    def status(self) -> str:
        ends = [r for r in self.rows if r.get("kind") == "end"]
        return str(ends[-1].get("status")) if ends else "running or killed"


def is_run_dir(path: Path) -> bool:
    return (path / "recipe.yaml").is_file() or (path / "metrics.jsonl").is_file()


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories from the arguments; a folder of runs stands for every run in it."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise GankitError(f"'{p}' is not a directory; give run directories such as runs/quickstart/<run id>")
        if is_run_dir(p):
            found.append(p)
            continue
        children = sorted(c for c in p.iterdir() if c.is_dir() and is_run_dir(c))
        if not children:
            raise GankitError(f"'{p}' is not a gankit run directory (no recipe.yaml or metrics.jsonl in it)")
        found += children
    return found


def load_run(path: str | Path) -> RunRecord:
    path = Path(path)
    recipe: dict[str, Any] = {}
    if (path / "recipe.yaml").is_file():
        try:
            recipe = yaml.safe_load((path / "recipe.yaml").read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise GankitError(f"'{path / 'recipe.yaml'}' is not valid YAML: {exc}") from None
    return RunRecord(path, recipe, read_metrics(path))


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"g": {"lr": 1}}}`` -> ``{"optim.g.lr": 1}``; lists stay values."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def config_of(run: RunRecord) -> dict[str, Any]:
    return flatten({k: v for k, v in run.recipe.items() if k not in IGNORED_KEYS})


def differing_keys(runs: list[RunRecord]) -> list[str]:
    """The recipe keys whose values are not the same in every run (a key one run lacks differs)."""
    configs = [config_of(r) for r in runs]
    keys = sorted(set().union(*configs)) if configs else []
    missing = object()
    return [k for k in keys
            if len({json.dumps(c.get(k, missing), sort_keys=True, default=str) for c in configs}) > 1]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def series(rows: list[dict[str, Any]], key: str, metric: str | None = None) -> tuple[list[int], list[float]]:
    """(steps, values) of ``key`` in train rows, or of ``metric``'s eval rows when given."""
    steps, values = [], []
    for row in rows:
        if metric is not None and (row.get("kind") != "eval" or row.get("metric") != metric):
            continue
        if metric is None and row.get("kind") != "train":
            continue
        value = _number(row.get(key))
        if value is not None and isinstance(row.get("step"), int):
            steps.append(row["step"])
            values.append(value)
    return steps, values


def final_and_best(run: RunRecord, metric: str) -> tuple[float | None, float | None]:
    _, values = series(run.rows, "value", metric=metric)
    if not values:
        return None, None
    best = max(values) if metric.lower() in HIGHER_IS_BETTER else min(values)
    return values[-1], best


def summarize(run: RunRecord, metrics: list[str]) -> dict[str, Any]:
    """The table's numbers for one run."""
    steps = [r["step"] for r in run.train_rows if isinstance(r.get("step"), int)]
    rates = series(run.rows, "img_per_s")[1]
    out: dict[str, Any] = {"steps": max(steps) if steps else 0,
                           # the median: the first window includes start-up and is much slower
                           "img_per_s": statistics.median(rates) if rates else None}
    for m in metrics:
        out[f"{m} final"], out[f"{m} best"] = final_and_best(run, m)
    return out


def metrics_present(runs: list[RunRecord], chosen: str) -> list[str]:
    """The table's metrics: the chosen one, then FID/IS/KID where any run has them."""
    have = {r.get("metric") for run in runs for r in run.eval_rows}
    return [chosen] + [m for m in TABLE_METRICS if m != chosen and m in have]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def table_rows(runs: list[RunRecord], metric: str) -> tuple[list[str], list[list[str]]]:
    """The comparison as a header and string rows (shared by the text table and the report)."""
    diff = differing_keys(runs)
    metrics = metrics_present(runs, metric)
    header = ["run", "recipe", *diff, "steps"]
    for m in metrics:
        header += [f"{m} final", f"{m} best"]
    header.append("img/s")
    rows = []
    for run in runs:
        config, numbers = config_of(run), summarize(run, metrics)
        cells = [run.run_id, run.name, *(config.get(k) for k in diff), numbers["steps"]]
        for m in metrics:
            cells += [numbers[f"{m} final"], numbers[f"{m} best"]]
        cells.append(numbers["img_per_s"])
        rows.append([_cell(c) for c in cells])
    return header, rows


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def plot_runs(runs: list[RunRecord], metric: str, out: Path) -> Path:
    """A PNG with ``metric``, loss_d and loss_g against step, one line per run."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and never a GUI window
    import matplotlib.pyplot as plt

    panels = [(f"{metric} (eval)", "value", metric), ("loss_d", "loss_d", None), ("loss_g", "loss_g", None)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, (title, key, m) in zip(axes[0], panels):
        drawn = False
        for i, run in enumerate(runs):
            steps, values = series(run.rows, key, metric=m)
            if steps:  # one colour per run in every panel, also when a panel lacks some runs
                ax.plot(steps, values, marker="o" if len(steps) < 20 else None, markersize=3,
                        label=run.run_id, color=f"C{i % 10}")
                drawn = True
        if not drawn:
            ax.text(0.5, 0.5, f"no {m or key} values", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][1].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize="small")
    fig.tight_layout(rect=(0, 0.1 if handles else 0, 1, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
