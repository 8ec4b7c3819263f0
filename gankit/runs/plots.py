"""The plots of ``gankit compare`` and ``gankit report``, and the side-by-side sample grids.

Per-run curves are labelled by the settings that differ between the runs
(``loss.name=hinge``), not by run ids; a group's curve is the mean over its
finished runs at each step with a band: the 95% Student t interval over the
runs that reached that step.
"""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

import numpy as np

from gankit.runs.compare import curve, labels
from gankit.runs.groups import Group
from gankit.rundir.record import RunRecord
from gankit.runs.stats import LEVEL, t_quantile

MAX_LEGEND = 12


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


def _panels(metric: str | None) -> list[tuple[str, str, str | None]]:
    return ([(f"{metric} (eval)", "value", metric)] if metric else []) + [
        ("loss_d", "loss_d", None), ("loss_g", "loss_g", None)]


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
    ncol = max(1, min(3, len(names), fits // (max(map(len, names)) + 6)))
    fig.legend(handles, names, loc="lower center", ncol=ncol, fontsize="small")
    return math.ceil(len(names) / ncol)


def _finish(fig, axes) -> None:
    rows = _legend(fig, axes)
    fig.tight_layout(rect=(0, min(0.06 * rows + 0.04, 0.4) if rows else 0, 1, 1))


def plot_runs(runs: list[RunRecord], metric: str | None, out: Path | None) -> bytes | Path:
    """``metric``, loss_d and loss_g against step, one line per run, named by its differing settings."""
    plt = _plt()
    panels = _panels(metric)
    names = labels(runs)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8 + 0.25 * min(len(runs), MAX_LEGEND) / 3),
                             squeeze=False)
    for ax, (title, key, m) in zip(axes[0], panels):
        drawn = False
        for i, (run, name) in enumerate(zip(runs, names)):
            steps, values = curve(run, key, m)
            if steps:  # one colour per run in every panel, also when a panel lacks some runs
                ax.plot(steps, values, marker="o" if len(steps) < 20 else None, markersize=3, label=name,
                        color=f"C{i % 10}", linewidth=1.2 if len(runs) < 20 else 0.6)
                drawn = True
        _decorate(ax, title, drawn, m or key)
    _finish(fig, axes[0])
    return save(fig, out)


def _decorate(ax, title: str, drawn: bool, what: str) -> None:
    if not drawn:
        ax.text(0.5, 0.5, f"no {what} values", ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)


def group_curve(group: Group, key: str, metric: str | None = None):
    """(steps, mean, low, high) over the group's finished runs (the band NaN where fewer than 2 reached a step)."""
    by_step: dict[int, list[float]] = {}
    for run in group.finished:
        for s, v in zip(*curve(run, key, metric)):
            by_step.setdefault(s, []).append(v)
    steps = sorted(by_step)
    mean, low, high = [], [], []
    for s in steps:
        x = np.asarray(by_step[s])
        m = float(x.mean())
        half = t_quantile(0.5 + LEVEL / 2, len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x)) if len(x) > 1 \
            else math.nan
        mean.append(m)
        low.append(m - half)
        high.append(m + half)
    return steps, mean, low, high


def draw_groups(ax, groups: list[Group], key: str, metric: str | None) -> bool:
    drawn = False
    for i, g in enumerate(groups):
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


def plot_groups(groups: list[Group], metric: str | None, out: Path | None) -> bytes | Path:
    """Each group's mean curve with its 95% band: ``metric``, loss_d and loss_g against step."""
    plt = _plt()
    panels = _panels(metric)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
    for ax, (title, key, m) in zip(axes[0], panels):
        drawn = draw_groups(ax, groups, key, m)
        _decorate(ax, title + " — mean, 95% band", drawn, m or key)
    _finish(fig, axes[0])
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
