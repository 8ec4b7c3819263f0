"""One self-contained HTML page over several runs, or over the groups of a sweep.

Several runs: the per-run table (status, the settings that tell the most
runs apart, steps, metrics with their direction), the config diff (every
setting that differs), the curves overlaid (each run named by its short id
and the setting that tells it apart; a metric's runs together only where
measured alike, losses only where of one kind), the last sample grids side by side, and each run's metrics
with their provenance (and the metrics it skipped, with the command that
fills them in).

Groups (a sweep, or ``--group-by``): the grouped table (mean and 95%
interval per metric, best, worst), the comparison with ``--baseline``, each
group's mean curve with its band, and the last grid of each group's median
run; then the runs themselves as above. Same page rules as
:mod:`gankit.runs.report`: inline CSS, images as data URIs, nothing fetched.
"""

from __future__ import annotations

import time

from gankit.runs import plots
from gankit.runs.compare import table_rows
from gankit.runs.settings import config_of, differing_keys, labels, legend_labels, value_text
from gankit.runs.groups import Comparison, baseline_table, describe, group_table, median_grids
from gankit.rundir.record import RunRecord
from gankit.runs.report import CURVES, LABELS, _e, figure, head, line_plot, metrics_table

MAX_RUN_SECTIONS = 50  # per-run metrics sections; a page over thousands of runs stays readable
COLOURS = [f"C{i}" for i in range(10)]


def html_table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    out = [f"<table class='{cls}'><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def config_diff(runs: list[RunRecord], names: list[str]) -> str:
    diff = differing_keys(runs)
    if not diff:
        return "<p>The runs' recipes are the same (apart from provenance and logging).</p>"
    configs = [config_of(r) for r in runs]
    rows = [[k, *(value_text(c[k]) if k in c else "(absent)" for c in configs)] for k in diff]
    return html_table(["key", *names], rows, "diff")


def overlaid_curves(runs: list[RunRecord], names: list[str], metrics: list[str]) -> list[str]:
    """One small figure per curve, every run in it that it may be drawn with, the same colour per run throughout.

    Losses of different kinds (loss.name) and a metric measured differently
    (its provenance) get a figure each (:mod:`gankit.runs.plots`).
    """
    figures = []
    panels = plots.loss_panels(runs, CURVES[0][1] + CURVES[1][1], LABELS)  # losses, D(x) and D(G(z))
    for m in metrics:
        panels += plots.metric_panels(runs, m)
    for panel in panels:
        lines = [(names[i], steps, values, COLOURS[i % 10]) for i, steps, values in panel.lines if steps]
        if lines:
            figures.append(figure(line_plot(panel.title, lines, legend=len(runs) <= 8), "curve", panel.title))
    return figures


def grids_side_by_side(items: list[tuple[str, RunRecord]]) -> str:
    parts = ["<div class='grids side' id='last-grids'>"]
    for caption, run in items:
        last = run.samples[-1]
        step = last.stem.removeprefix("step_").lstrip("0") or "0"
        parts.append(figure(last.read_bytes(), "grid", caption, f"{caption}, step {step}"))
    if not items:
        parts.append("<p>No sample grids in these runs.</p>")
    parts.append("</div>")
    return "\n".join(parts)


def runs_sections(runs: list[RunRecord], names: list[str], metric: str | None) -> list[str]:
    header, rows = table_rows(runs, metric)
    parts = ["<h2>Runs</h2>", html_table(header, rows, "runs"),
             "<h2>Settings that differ</h2>", config_diff(runs, names)]
    parts.append("<h2>Metrics of each run, with provenance</h2>")
    for run, name in list(zip(runs, names))[:MAX_RUN_SECTIONS]:
        summary = f"<b>{_e(name)}</b> · {_e(run.id)} · {_e(run.status)} · {_e(run.path)}"
        parts += [f"<details{' open' if len(runs) <= 8 else ''}><summary>{summary}</summary>", metrics_table(run),
                  "</details>"]
    if len(runs) > MAX_RUN_SECTIONS:
        parts.append(f"<p>... and {len(runs) - MAX_RUN_SECTIONS} more runs (see gankit runs).</p>")
    return parts


def render_runs(c: Comparison) -> str:
    """The page over several runs, each named by its short id and the setting that tells it apart."""
    runs = c.runs
    names = legend_labels(runs)
    title = f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
    parts = [head(f"gankit report: {title}"), f"<h1>{title}</h1>",
             f"<p class='meta'>report written {_e(time.strftime('%Y-%m-%d %H:%M:%S'))}; each run's final value is "
             "its last evaluation</p>"]
    parts += [f"<p class='note'>{_e(n)}</p>" for n in c.notes]
    parts.append("<h2>Curves</h2><div class='plots' id='curves'>")
    metrics = [c.metric] if c.metric else []
    metrics += [m for r in runs for m in r.metrics if m not in metrics][:3]
    parts += overlaid_curves(runs, names, list(dict.fromkeys(metrics)))
    parts.append("</div><h2>Last sample grids</h2>")
    parts.append(grids_side_by_side([(n, r) for n, r in zip(names, runs) if r.samples]))
    parts += runs_sections(runs, names, c.metric)
    parts.append("</body></html>")
    return "\n".join(parts)


def render_groups(c: Comparison, title: str) -> str:
    """The page over groups of runs (a sweep): intervals, the baseline comparison, bands, median grids."""
    parts = [head(f"gankit report: {title}"), f"<h1>{_e(title)}</h1>",
             f"<p class='meta'>{_e(describe(c.groups, c.keys, c.method, c.metrics))} · report written "
             f"{_e(time.strftime('%Y-%m-%d %H:%M:%S'))}</p>", "<h2>Groups</h2>",
             html_table(*group_table(c.groups, c.metrics, c.method, c.seed), "groups")]
    if c.base is not None:
        header, rows = baseline_table(c.groups, c.base, c.metrics, c.method, c.seed)
        parts += [f"<h2>Against the baseline {_e(c.base.label)}</h2>",
                  "<p>difference = group mean − baseline mean, its 95% interval, Welch's t-test p-value.</p>",
                  html_table(header, rows, "baseline")]
    parts += [f"<p class='note'>{_e(n)}</p>" for n in c.notes]
    parts.append("<h2>Curves: each group's mean, 95% band</h2><div class='plots wide' id='curves'>")
    parts.append(figure(plots.plot_groups(c.groups, c.metric, None), "curve", "group curves"))
    parts.append("</div><h2>Last sample grid of each group's median run</h2>")
    parts.append(grids_side_by_side(median_grids(c)))
    parts += runs_sections(c.runs, labels(c.runs), c.metric)
    parts.append("</body></html>")
    return "\n".join(parts)
