"""The plots of ``gankit compare`` and ``gankit report``, and the side-by-side sample grids.

A figure is a grid of panels: one row per metric (its direction in the
title, ``fid↓``), then a row for loss_d and one for loss_g. A metric's runs share a panel only
when they were measured alike (:data:`~gankit.rundir.record.MATCHING_PROVENANCE`:
SWD at 16 and at 32 pixels are two panels); losses share one only when they
are of one kind (the recipe's ``loss.name``: BCE and hinge values are on
different scales). Per-run curves are named by the run's short id and the
setting that tells it apart (:func:`~gankit.runs.settings.legend_labels`); a
group's curve is the mean over its finished runs at each step with a 95%
band, which for a quantity that cannot be negative is a bootstrap (it stays
within the values) and otherwise Student t.
"""

from __future__ import annotations

import io
import json
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gankit.runs.compare import curve, metrics_present, provenance_of
from gankit.runs.direction import titled
from gankit.runs.groups import Group, loss_kind
from gankit.rundir.record import MATCHING_PROVENANCE, RunRecord, number
from gankit.runs.settings import legend_labels
from gankit.runs.stats import mean_interval

MAX_LEGEND = 12
MAX_PLOT_METRICS = 3  # rows of metric panels in a per-run figure
MAX_COLUMNS = 4
BAND_RESAMPLES = 2000  # a band's bootstrap at each step: 2,000 resamples keep a long curve quick


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and never a GUI window
    import matplotlib.pyplot as plt

    return plt


def save(fig, out: Path | None, dpi: int = 100) -> bytes | Path:
    """The figure as PNG bytes (``out`` None) or written to ``out``."""
    plt = _plt()
    if out is None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        plt.close(fig)
        return buf.getvalue()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


@dataclass
class Panel:
    """One axis: a title, and which runs (by index) or groups it draws, each with its (steps, values)."""

    title: str
    what: str  # said when nothing is drawn ("no swd values")
    lines: list[tuple[int, list[int], list[float]]] = field(default_factory=list)  # (run or group index, x, y)
    kind: str | None = None  # a loss panel's kind of loss (loss.name); None: every kind, or a metric


# -- which runs share a panel ------------------------------------------------------------------------------
def _provenance_text(prov: dict, differing: list[str]) -> str:
    parts = []
    for key in differing:
        value = prov.get(key)
        if isinstance(value, dict):  # a reference set: its name and size say enough
            value = value.get("name") or value.get("dataset") or json.dumps(value, sort_keys=True, default=str)
        text = str(value)
        parts.append(f"{key}={text if len(text) <= 24 else text[:23] + '…'}")
    return ", ".join(parts)


def metric_panels(runs: list[RunRecord], metric: str) -> list[Panel]:
    """``metric`` against step, one panel per set of runs measured alike (their eval rows' provenance)."""
    sets: dict[str, tuple[dict, dict[int, dict[int, float]]]] = {}
    for i, run in enumerate(runs):
        for row in run.digest().evals.get(metric, []):
            value, step = number(row.get("value")), row.get("step")
            if value is None or not isinstance(step, int):
                continue
            prov = provenance_of(row)
            key = json.dumps(prov, sort_keys=True, default=str)
            sets.setdefault(key, (prov, {}))[1].setdefault(i, {})[step] = value  # the last logged of a step
    name = titled(metric, runs)
    if not sets:
        return [Panel(f"{name} (eval)", metric)]
    provs = [prov for prov, _ in sets.values()]
    # the keys whose (shortened) values tell the panels apart: a reference set that differs only in its
    # transform reads the same ("digits") and says nothing the resolution does not
    differing = [k for k in MATCHING_PROVENANCE if len({_provenance_text(p, [k]) for p in provs}) > 1]
    panels = []
    for prov, by_run in sets.values():
        title = f"{name} (eval)" if len(sets) == 1 else f"{name}: {_provenance_text(prov, differing)}"
        lines = [(i, sorted(at), [at[s] for s in sorted(at)]) for i, at in sorted(by_run.items())]
        panels.append(Panel(title, metric, lines))
    return panels


def loss_panels(runs: list[RunRecord], keys: tuple[str, ...] = ("loss_d", "loss_g"),
                titles: dict[str, str] | None = None) -> list[Panel]:
    """loss_d and loss_g (or other ``keys`` a loss makes), a panel per kind of loss (``loss.name``) the runs used."""
    kinds: dict[str, list[int]] = {}
    for i, run in enumerate(runs):
        kinds.setdefault(loss_kind(run), []).append(i)
    panels = []
    for key in keys:
        name = (titles or {}).get(key, key)
        for kind, members in kinds.items():
            title = name if len(kinds) == 1 else f"{name} ({kind})"
            panels.append(Panel(title, key, [(i, *curve(runs[i], key)) for i in members], kind))
    return panels


# -- drawing ------------------------------------------------------------------------------------------------
def _figure(rows: list[list[Panel]], height: float):
    """A figure of panel rows (each row as wide as it needs, at most MAX_COLUMNS a line), and its axes."""
    plt = _plt()
    lines = [row[i:i + MAX_COLUMNS] for row in rows for i in range(0, len(row), MAX_COLUMNS)]
    ncols = max(len(line) for line in lines)
    fig, axes = plt.subplots(len(lines), ncols, figsize=(4.6 * ncols, height * len(lines)), squeeze=False)
    placed = []
    for r, line in enumerate(lines):
        for c in range(ncols):
            if c < len(line):
                placed.append((axes[r][c], line[c]))
            else:
                axes[r][c].set_visible(False)
    return fig, placed


def _legend(fig, axes) -> int:
    """One legend under the panels, as many columns as fit the figure's width; the rows it takes."""
    handles, names = [], []
    for ax in axes:
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in names:
                handles.append(h)
                names.append(n)
    if not handles:
        return 0
    if len(handles) > MAX_LEGEND:
        handles, names = handles[:MAX_LEGEND], names[:MAX_LEGEND - 1] + [f"... and {len(names) - MAX_LEGEND + 1} more"]
    # Characters across the figure at the legend's font ("small": ~8 pt, a character ~0.55 em), less a
    # line sample and padding (~6 characters) per entry: long labels take a column each, not the margin.
    fits = int(fig.get_figwidth() * 72 / (8 * 0.55))
    ncol = max(1, min(4, len(names), fits // (max(map(len, names)) + 6)))
    fig.legend(handles, names, loc="lower center", ncol=ncol, fontsize="small")
    return math.ceil(len(names) / ncol)


def _finish(fig, axes) -> None:
    rows = _legend(fig, axes)
    inches = fig.get_figheight()
    legend = (0.22 * rows + 0.15) / inches if rows else 0  # ~0.22 inch a legend line
    fig.tight_layout(rect=(0, min(legend, 0.4), 1, 1))


def _decorate(ax, title: str, drawn: bool, what: str) -> None:
    if not drawn:
        ax.text(0.5, 0.5, f"no {what} values", ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)


def run_panels(runs: list[RunRecord], metric: str | None) -> list[list[Panel]]:
    """The per-run figure's rows: the metrics (``metric`` first), then loss_d and loss_g, a panel per kind."""
    metrics = metrics_present(runs, metric)[:MAX_PLOT_METRICS] if metric else []
    return [metric_panels(runs, m) for m in metrics] + [loss_panels(runs, (key,)) for key in ("loss_d", "loss_g")]


def plot_runs(runs: list[RunRecord], metric: str | None, out: Path | None) -> bytes | Path:
    """Metrics and losses against step, one line per run (one colour throughout), comparable runs per panel."""
    names = legend_labels(runs)
    fig, placed = _figure(run_panels(runs, metric), 3.6)
    for ax, panel in placed:
        for i, steps, values in panel.lines:
            if steps:
                ax.plot(steps, values, marker="o" if len(steps) < 20 else None, markersize=3, label=names[i],
                        color=f"C{i % 10}", linewidth=1.2 if len(runs) < 20 else 0.6)
        last = max((max(steps) for _, steps, _ in panel.lines if steps), default=0)
        if last and max(len(steps) for _, steps, _ in panel.lines) < 4:
            ax.set_xlim(0, last * 1.08)  # a metric measured once or twice: the step axis from 0, not zoomed in
        _decorate(ax, panel.title, any(steps for _, steps, _ in panel.lines), panel.what)
    _finish(fig, [ax for ax, _ in placed])
    return save(fig, out)


def group_curve(group: Group, key: str, metric: str | None = None, nonnegative: bool | None = None, seed: int = 0):
    """(steps, mean, low, high) over the group's finished runs (the band NaN where fewer than 2 reached a step).

    ``nonnegative`` (default: every value of the curve is >= 0): a bootstrap
    band, which stays within the values, instead of Student t's, which for a
    few runs can reach far below 0.
    """
    by_step: dict[int, list[float]] = {}
    for run in group.finished:
        for s, v in zip(*curve(run, key, metric)):
            by_step.setdefault(s, []).append(v)
    if nonnegative is None:
        nonnegative = all(v >= 0 for values in by_step.values() for v in values)
    method = "bootstrap" if nonnegative else "t"
    steps = sorted(by_step)
    mean, low, high = [], [], []
    for s in steps:
        interval = mean_interval(by_step[s], method, seed, resamples=BAND_RESAMPLES)
        mean.append(interval.mean)
        low.append(math.nan if interval.low is None else interval.low)
        high.append(math.nan if interval.high is None else interval.high)
    return steps, mean, low, high


def draw_groups(ax, groups: list[Group], key: str, metric: str | None, indices: list[int] | None = None) -> bool:
    """Each group's mean curve and band in ``ax`` (``indices``: each group's colour, by default its position)."""
    drawn = False
    indices = indices or list(range(len(groups)))
    for i, g in zip(indices, groups):
        steps, mean, low, high = group_curve(g, key, metric)
        if not steps:
            continue
        colour = f"C{i % 10}"
        if len(steps) < 4:  # a metric evaluated once or twice: points with error bars, side by side
            err = np.nan_to_num([np.subtract(mean, low), np.subtract(high, mean)])
            dodge = (i - (len(groups) - 1) / 2) * 0.01 * max(max(steps), 1)
            ax.errorbar(np.add(steps, dodge), mean, yerr=err, fmt="o", capsize=4, color=colour, label=g.label)
            ax.set_xlim(0, max(max(steps), 1) * 1.08)  # the step axis from 0, not zoomed onto one step
        else:
            ax.plot(steps, mean, color=colour, label=g.label, linewidth=1.3)
            ax.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)
        drawn = True
    return drawn


def group_panels(groups: list[Group], metric: str | None) -> list[list[Panel]]:
    """The grouped figure's rows: ``metric`` (pooled only where measured alike), then losses by kind."""
    rows = []
    if metric:
        rows.append([Panel(f"{titled(metric, [r for g in groups for r in g.runs])} (eval) — mean, 95% band", metric,
                           [(i, [], []) for i in range(len(groups))])])
    kinds: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        for kind in dict.fromkeys(loss_kind(r) for r in (g.finished or g.runs)):
            kinds.setdefault(kind, []).append(i)
    losses = []
    for key in ("loss_d", "loss_g"):
        for kind, members in kinds.items():
            title = key if len(kinds) == 1 else f"{key} ({kind})"
            losses.append(Panel(f"{title} — mean, 95% band", key, [(i, [], []) for i in members],
                                kind if len(kinds) > 1 else None))
    return rows + [[p for p in losses if p.what == key] for key in ("loss_d", "loss_g")]


def plot_groups(groups: list[Group], metric: str | None, out: Path | None) -> bytes | Path:
    """Each group's mean curve with its 95% band: ``metric``, then loss_d and loss_g, a panel per loss kind."""
    fig, placed = _figure(group_panels(groups, metric), 4.0)
    for ax, panel in placed:
        indices = [i for i, _, _ in panel.lines]
        members = [groups[i] for i in indices]
        if panel.kind is not None:  # a group that mixes kinds of loss draws each kind's runs in its panel
            members = [g.only(lambda r, kind=panel.kind: loss_kind(r) == kind) for g in members]
        loss = panel.what in ("loss_d", "loss_g")
        drawn = draw_groups(ax, members, panel.what if loss else "value", None if loss else metric, indices)
        _decorate(ax, panel.title, drawn, panel.what)
    _finish(fig, [ax for ax, _ in placed])
    return save(fig, out)


def grid_montage(items: list[tuple[str, Path]], out: Path | None, max_side: int = 256) -> bytes | Path:
    """Sample grids side by side (rows of at most 4), each captioned; a PNG file or bytes."""
    from PIL import Image, ImageDraw

    tiles = []
    for caption, path in items:
        with Image.open(path) as im:
            im = im.convert("RGB")
        scale = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.NEAREST)
        tiles.append((caption, im))
    if not tiles:
        raise ValueError("no sample grids to put side by side")
    cols = min(4, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    cap_h, pad = 30, 8
    w = max(t.width for _, t in tiles)
    h = max(t.height for _, t in tiles)
    sheet = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + cap_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (caption, tile) in enumerate(tiles):
        x = pad + (i % cols) * (w + pad)
        y = pad + (i // cols) * (h + cap_h + pad)
        # At the spaces between settings ("loss.name=hinge, seed=1"), never inside one; two lines at most.
        lines = textwrap.wrap(caption, width=max(1, w // 6), break_long_words=True, break_on_hyphens=False)[:2]
        draw.multiline_text((x, y), "\n".join(lines), fill="black")
        sheet.paste(tile, (x, y + cap_h))
    if out is None:
        buf = io.BytesIO()
        sheet.save(buf, format="PNG")
        return buf.getvalue()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
