"""Which way is better for a metric: the ↓ and ↑ of every table and plot title.

    higher_is_better("fid") -> False;  titled("fid", runs) -> "fid↓"

Every direction gankit's comparisons use comes from the metrics' own eval
rows (``higher_is_better``, written from ``Metric.higher_is_better``), read by
:func:`gankit.rundir.metrics.higher_is_better`; this module only draws it.
"""

from __future__ import annotations

from typing import Any

from gankit.rundir.metrics import higher_is_better
from gankit.rundir.record import RunRecord

__all__ = ["arrow", "higher_is_better", "metric_rows", "titled"]


def arrow(metric: str, rows: list[dict[str, Any]] = ()) -> str:
    """↑ for a metric where higher is better, ↓ where lower is."""
    return "↑" if higher_is_better(metric, rows) else "↓"


def metric_rows(runs: list[RunRecord], metric: str) -> list[dict[str, Any]]:
    """The runs' final rows of ``metric`` (what says how it was measured, and its direction)."""
    return [row for r in runs if (row := r.final_row(metric)) is not None]


def titled(metric: str, runs: list[RunRecord] = (), shown: str | None = None) -> str:
    """``fid↓``: the metric (or its ``shown`` name, e.g. with its sample budget) with the direction that is better."""
    return f"{shown or metric}{arrow(metric, metric_rows(list(runs), metric))}"
