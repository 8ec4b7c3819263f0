"""Comparing runs from their local records: which runs, what differs, the per-run table.

Everything is read from run directories (``recipe.yaml`` and
``metrics.jsonl``, streamed), so runs compare the same whether or not wandb
was on, and no checkpoint is ever loaded. Grouped comparisons (means and
intervals over seeds) are :mod:`gankit.runs.groups`; the plots
:mod:`gankit.runs.plots`.

A run's *final* value of a metric is its last evaluation: the eval row with
the highest step (the last written when several share a step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gankit.core.errors import GankitError, suggestion
from gankit.rundir.record import (MATCHING_PROVENANCE, PREFERRED_METRICS, RunRecord, fill_in, is_run_dir,
                                  is_sweep_dir, load_run, number, walk_runs)
from gankit.runs.direction import titled
from gankit.runs.intervals import budget_note, final_text, interval_note, shown_metric
# labels, differing_keys, config_of, value_text: moved to gankit.runs.settings, still importable from here
from gankit.runs.settings import (_implied, config_of, differing_keys, labels, ranked_settings,  # noqa: F401
                                  short_value, value_text)

MAX_TABLE_METRICS = 4
MAX_SETTINGS = 8  # settings the per-run table shows; the rest are counted and named under it
TABLE_WIDTH = 150  # characters: the per-run table fits a wide terminal


@dataclass
class Selection:
    """The runs the command line named, and what their sweeps say about them."""

    runs: list[RunRecord]
    axes: list[str] = field(default_factory=list)  # the grid axes of the sweeps named (the default grouping)
    notes: list[str] = field(default_factory=list)  # sweep runs without a run directory, ...
    sweeps: list[Path] = field(default_factory=list)


def select_runs(paths: list[str | Path]) -> Selection:
    """Run directories, sweep directories (their runs, from sweep.yaml) or folders of runs (found recursively)."""
    from gankit.runs.sweep import read_sweep

    sel = Selection([])
    seen: set[Path] = set()

    def add(run: RunRecord) -> None:
        if run.path.resolve() not in seen:
            seen.add(run.path.resolve())
            sel.runs.append(run)

    for p in map(Path, paths):
        if not p.is_dir():
            raise GankitError(f"'{p}' is not a directory; give run directories such as runs/quickstart/<run id>, "
                              "a sweep directory or a folder of runs")
        if is_run_dir(p):
            add(load_run(p))
        elif is_sweep_dir(p):
            sweep = read_sweep(p)
            sel.sweeps.append(p)
            sel.axes += [a for a in sweep.axes if a not in sel.axes]
            for job in sweep.jobs:
                run_dir = sweep.run_dir(job)
                if run_dir is not None and is_run_dir(run_dir):
                    run = load_run(run_dir)
                    run.sweep_status = job.status
                    add(run)
                else:
                    why = f": {job.error}" if job.error else ""
                    sel.notes.append(f"{p}: {job.name} has no run directory ({job.status}{why})")
        else:
            found = walk_runs(p)
            if not found:
                raise GankitError(f"'{p}' is not a gankit run directory and holds none (a run directory has "
                                  "recipe.yaml with metrics.jsonl or checkpoints/)")
            for run_dir in found:
                add(load_run(run_dir))
    if not sel.runs:
        raise GankitError("no run directories to compare yet" + "".join(f"\n    {n}" for n in sel.notes[:5]))
    return sel


def find_runs(paths: list[str | Path]) -> list[Path]:
    """The run directories of :func:`select_runs`."""
    return [r.path for r in select_runs(paths).runs]


# -- metrics -------------------------------------------------------------------------------------------
def recorded_metrics(runs: list[RunRecord]) -> list[str]:
    """Every metric some run has a value of: FID, IS, KID first, then in the order recorded."""
    seen: list[str] = []
    for run in runs:
        seen += [m for m in run.metrics if m not in seen]
    return sorted(seen, key=lambda m: (PREFERRED_METRICS.index(m) if m in PREFERRED_METRICS else len(PREFERRED_METRICS),
                                       seen.index(m)))


def skipped_notes(runs: list[RunRecord], by_metric: bool = True) -> dict[str, str]:
    """metric -> a line saying how many runs skipped it (and still have no value), why, and how to fill it in;
    with ``by_metric=False`` metrics skipped alike share one line (keyed by their names)."""
    hits: dict[str, list[tuple[RunRecord, dict]]] = {}
    for run in runs:
        for event in run.skipped_metrics():
            for m in map(str, event.get("metrics") or []):
                # not filled in since (gankit eval --log); a resumed run says it again: one run counts once
                if m not in run.metrics and all(r is not run for r, _ in hits.get(m, [])):
                    hits.setdefault(m, []).append((run, event))
    lines: dict[tuple, list[str]] = {}
    for m, found in hits.items():
        run, event = found[0]
        key = (len(found), str(event.get("reason") or "no reason recorded"), fill_in(run, event, "RUN_DIR"))
        lines.setdefault(key if not by_metric else (m, *key), []).append(m)
    notes = {}
    for (*_, n, reason, fill), metrics in lines.items():
        names = ", ".join(metrics)
        it, was = ("them", "were") if len(metrics) > 1 else ("it", "was")
        notes[names] = f"{names} {was} skipped in {n} run(s) ({reason}); fill {it} in with: {fill}"
    return notes


def choose_metric(runs: list[RunRecord], requested: str | None) -> str | None:
    """``--metric``, checked against what the runs recorded; by default the first metric every run has."""
    recorded = recorded_metrics(runs)
    if requested is None:
        common = [m for m in recorded if all(m in r.metrics for r in runs)]
        return (common or recorded or [None])[0]
    if requested in recorded:
        return requested
    skipped = skipped_notes(runs)
    if requested in skipped:
        raise GankitError(f"--metric {requested}: no run has a value; {skipped[requested]}")
    have = ", ".join(recorded) if recorded else "none (set eval.metrics in the recipe)"
    raise GankitError(f"--metric {requested}: no run recorded it{suggestion(requested, recorded)}\n"
                      f"    metrics these runs recorded: {have}")


def provenance_of(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in MATCHING_PROVENANCE if k in row}


def provenance_conflict(runs: list[RunRecord], metric: str, names: list[str] | None = None) -> str | None:
    """None when every run's final ``metric`` was measured alike; else a line naming the difference."""
    names = names or [r.id for r in runs]
    seen: dict[str, dict[str, list[str]]] = {}
    for run, name in zip(runs, names):
        row = run.final_row(metric)
        if row is None:
            continue
        prov = provenance_of(row)
        for key in MATCHING_PROVENANCE:
            text = json.dumps(prov.get(key), sort_keys=True, default=str)
            seen.setdefault(key, {}).setdefault(text, []).append(name)
    for key, values in seen.items():
        if len(values) > 1:
            parts = [f"{v if len(v) <= 40 else v[:39] + '…'} ({', '.join(n[:3])}{' ...' if len(n) > 3 else ''})"
                     for v, n in values.items()]
            text = f"{metric}: not compared, its {key} differs between runs: " + " vs ".join(parts)
            return text + (budget_note(runs, metric) if key in ("num_real", "num_fake") else "")
    return None



# -- the per-run table ----------------------------------------------------------------------------------
def series(rows, key: str, metric: str | None = None) -> tuple[list[int], list[float]]:
    """(steps, values) of ``key`` in train rows, or of ``metric``'s eval rows when given, in step order.

    A step logged more than once (a resume that went back to an earlier
    checkpoint, ``gankit eval --log`` measuring a step again) counts once,
    with the value logged last.
    """
    at: dict[int, float] = {}
    for row in rows:
        if row.get("kind") != ("train" if metric is None else "eval") or (metric and row.get("metric") != metric):
            continue
        value = number(row.get(key))
        if value is not None and isinstance(row.get("step"), int):
            at[row["step"]] = value
    steps = sorted(at)
    return steps, [at[s] for s in steps]


def curve(run: RunRecord, key: str, metric: str | None = None) -> tuple[list[int], list[float]]:
    """A run's curve from its digest: a train scalar, or ``metric``'s values against step."""
    d = run.digest()
    if metric is None:
        return d.curves.get(key, ([], []))
    return series(d.evals.get(metric, []), "value", metric)


def final_and_best(run: RunRecord, metric: str) -> tuple[float | None, float | None]:
    return run.final(metric), run.best(metric)


def median_rate(run: RunRecord) -> float | None:
    # the median: the first window includes start-up and is much slower
    rates = sorted(curve(run, "img_per_s")[1])
    if not rates:
        return None
    mid = len(rates) // 2
    return rates[mid] if len(rates) % 2 else (rates[mid - 1] + rates[mid]) / 2


def summarize(run: RunRecord, metrics: list[str]) -> dict[str, Any]:
    """The table's numbers for one run."""
    out: dict[str, Any] = {"steps": run.digest().steps, "img_per_s": median_rate(run)}
    for m in metrics:
        out[f"{m} final"], out[f"{m} best"] = final_and_best(run, m)
    return out


def metrics_present(runs: list[RunRecord], chosen: str | None) -> list[str]:
    """The table's metrics: the chosen one, then the others recorded (at most MAX_TABLE_METRICS)."""
    rest = [m for m in recorded_metrics(runs) if m != chosen]
    return ([chosen] if chosen else []) + rest[: MAX_TABLE_METRICS - (1 if chosen else 0)]


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


_cell = cell


@dataclass
class RunTable:
    """The per-run table: its header and rows, and the settings it shows and leaves out."""

    header: list[str]
    rows: list[list[str]]
    settings: list[str]  # the settings shown, most telling first
    hidden: list[str]  # settings that differ but are not shown (MAX_SETTINGS, or the width)
    hidden_metrics: list[str] = field(default_factory=list)


def _width(columns: list[list[str]]) -> int:
    return sum(max(map(len, col)) for col in columns) + 2 * (len(columns) - 1)


def run_table(runs: list[RunRecord], metric: str | None, width: int | None = TABLE_WIDTH,
              max_settings: int = MAX_SETTINGS) -> RunTable:
    """One row per run: id, recipe, status, the settings that explain the most differences, steps, metrics, img/s.

    At most ``max_settings`` settings, most telling first (:func:`ranked_settings`;
    ``name`` is the recipe column; arguments that come with a different
    component are left to its name), each value cut to :data:`MAX_CELL`
    characters; with ``width``, only as many settings and metrics as fit in
    that many characters. The chosen metric has its final and best value,
    the others their final value.
    """
    configs = [config_of(r) for r in runs]
    diff = differing_keys(runs)
    # the recipe column names the recipe; a component's own arguments are said by its name (and counted below)
    ranked = [k for k in ranked_settings(runs) if k != "name" and not _implied(k, configs, diff)]
    hidden_implied = [k for k in ranked_settings(runs) if k != "name" and _implied(k, configs, diff)]
    metrics = metrics_present(runs, metric)
    numbers = [summarize(r, metrics) for r in runs]

    def column(title: str, cells: list[Any]) -> list[str]:
        return [title, *(cell(c) for c in cells)]

    fixed = [column("run", [r.id for r in runs]), column("recipe", [r.name for r in runs]),
             column("status", [r.status for r in runs])]
    steps = [column("steps", [n["steps"] for n in numbers])]
    metric_cols: list[tuple[str, list[list[str]]]] = []
    for m in metrics:
        title = titled(m, runs, shown_metric(runs, m))  # fid10k↓: its sample budget and direction
        cols = [column(f"{title} final", [final_text(r, m) for r in runs])]
        if m == metric:
            cols.append(column(f"{title} best", [n[f"{m} best"] for n in numbers]))
        metric_cols.append((m, cols))
    rate = [column("img/s", [n["img_per_s"] for n in numbers])]
    setting_cols = [(k, [k, *(short_value(c[k]) if k in c else "-" for c in configs)]) for k in ranked]

    def total(settings, mets) -> int:
        return _width(fixed + [c for _, c in settings] + steps + [c for _, cs in mets for c in cs] + rate)

    shown_metrics = list(metric_cols)
    while width and len(shown_metrics) > 1 and total(setting_cols[:1], shown_metrics) > width:
        shown_metrics.pop()  # the chosen metric stays
    shown: list[tuple[str, list[str]]] = []
    for key, col in setting_cols:
        if len(shown) >= max_settings or (width and total(shown + [(key, col)], shown_metrics) > width):
            continue  # a narrower setting further down may still fit
        shown.append((key, col))
    columns = fixed + [c for _, c in shown] + steps + [c for _, cs in shown_metrics for c in cs] + rate
    header = [c[0] for c in columns]
    rows = [[c[i + 1] for c in columns] for i in range(len(runs))]
    keys = [k for k, _ in shown]
    return RunTable(header, rows, keys, [k for k in ranked if k not in keys] + hidden_implied,
                    [m for m, _ in metric_cols if m not in dict(shown_metrics)])


def table_rows(runs: list[RunRecord], metric: str | None) -> tuple[list[str], list[list[str]]]:
    """The comparison as a header and string rows (the report's: no width limit)."""
    t = run_table(runs, metric, width=None)
    return t.header, t.rows


def hidden_note(table: RunTable, width: int = TABLE_WIDTH) -> str | None:
    """The line under the table naming what it leaves out, at most ``width`` characters."""
    parts = []
    if table.hidden:
        n = len(table.hidden)
        names, shown = "", 0
        for k in table.hidden:
            if len(names) + len(k) + 80 > width:
                break
            names += (", " if names else "") + k
            shown += 1
        more = f", ... ({n - shown} more)" if shown < n else ""
        parts.append(f"{n} more setting{'s' if n != 1 else ''} differ: {names}{more}; gankit report RUNS lists them all")
    if table.hidden_metrics:
        parts.append(f"also recorded: {', '.join(table.hidden_metrics)} (--metric NAME lists one first)")
    return "; ".join(parts) if parts else None


def table_notes(runs: list[RunRecord], metric: str | None) -> list[str]:
    """Lines under the per-run table: provenance that differs, metrics skipped."""
    present = metrics_present(runs, metric)
    notes = [c for m in present if (c := provenance_conflict(runs, m))]
    notes += [n] if (n := interval_note(runs, present)) else []
    return notes + list(skipped_notes(runs, by_metric=False).values())


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)

