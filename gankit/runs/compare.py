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

import collections
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gankit.core.errors import GankitError, suggestion
from gankit.rundir.record import (MATCHING_PROVENANCE, PREFERRED_METRICS, RunRecord, fill_in, is_run_dir, is_sweep_dir,
                                  load_run, number, walk_runs)

# Recipe keys (and sections) that never explain a difference between runs' results.
IGNORED_KEYS = ("gankit", "out_dir", "sweep", "log")
MAX_TABLE_METRICS = 4


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


# -- settings -------------------------------------------------------------------------------------------
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


def value_text(value: Any) -> str:
    """A setting as the command line would write it."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def differing_keys(runs: list[RunRecord]) -> list[str]:
    """The recipe keys whose values are not the same in every run (a key one run lacks differs)."""
    configs = [config_of(r) for r in runs]
    keys = sorted(set().union(*configs)) if configs else []
    missing = object()
    return [k for k in keys
            if len({json.dumps(c.get(k, missing), sort_keys=True, default=str) for c in configs}) > 1]


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def common_values(configs: list[dict[str, Any]], keys: list[str]) -> dict[str, str]:
    """For each key, the value more runs share than any other (as ``_key``); keys with a tie are left out."""
    common = {}
    for k in keys:
        counts = collections.Counter(_key(c.get(k, "-")) for c in configs).most_common(2)
        if len(counts) > 1 and counts[0][1] > counts[1][1]:
            common[k] = counts[0][0]
    return common


def labels(runs: list[RunRecord], max_len: int = 60) -> list[str]:
    """Each run named by the settings that differ (``loss.name=hinge, seed=2``); the run id when none do.

    With three runs or more, a setting most runs share is left out of the runs that have it.
    """
    configs = [config_of(r) for r in runs]
    diff = differing_keys(runs)
    # loss.fake_label, which only BCE has, says nothing once loss.name is in the label
    named = {k.removesuffix(".name") for k in diff if k.endswith(".name")}
    diff = [k for k in diff if k.endswith(".name") or k.rpartition(".")[0] not in named
            or all(k in c for c in configs)]
    common = common_values(configs, diff)
    out = []
    for run, config in zip(runs, configs):
        # a run is named by where it departs from what most runs share, so the setting that tells it apart
        # comes first instead of being cut off behind settings it has in common with most others
        own = [k for k in diff if k not in common or _key(config.get(k, "-")) != common[k]]
        text = ", ".join(f"{k}={value_text(config.get(k, '-'))}" for k in own) or run.id
        out.append(text if len(text) <= max_len else text[: max_len - 3] + "...")
    counts = {t: out.count(t) for t in out}
    return [f"{t} ({r.id})" if counts[t] > 1 and t != r.id else t for t, r in zip(out, runs)]


# -- metrics --------------------------------------------------------------------------------------------
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
                if m not in run.metrics:  # filled in since (gankit eval --log)
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
            parts = [f"{v} ({', '.join(n[:3])}{' ...' if len(n) > 3 else ''})" for v, n in values.items()]
            return f"{metric}: not compared, its {key} differs between runs: " + " vs ".join(parts)
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


def table_rows(runs: list[RunRecord], metric: str | None) -> tuple[list[str], list[list[str]]]:
    """The comparison as a header and string rows (shared by the text table and the report)."""
    diff = differing_keys(runs)
    metrics = metrics_present(runs, metric)
    header = ["run", "recipe", "status", *diff, "steps"]
    for m in metrics:
        header += [f"{m} final", f"{m} best"]
    header.append("img/s")
    rows = []
    for run in runs:
        config, numbers = config_of(run), summarize(run, metrics)
        cells = [run.id, run.name, run.status, *(value_text(config[k]) if k in config else None for k in diff),
                 numbers["steps"]]
        for m in metrics:
            cells += [numbers[f"{m} final"], numbers[f"{m} best"]]
        cells.append(numbers["img_per_s"])
        rows.append([cell(c) for c in cells])
    return header, rows


def table_notes(runs: list[RunRecord], metric: str | None) -> list[str]:
    """Lines under the per-run table: provenance that differs, metrics skipped."""
    notes = [c for m in metrics_present(runs, metric) if (c := provenance_conflict(runs, m))]
    return notes + list(skipped_notes(runs, by_metric=False).values())


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)

