"""Which way is better for a metric: the ↓ and ↑ of every table and plot title.

    higher_is_better("fid") -> False;  titled("fid", runs) -> "fid↓"

Every direction gankit's comparisons use comes from :func:`higher_is_better`:
a metric's own rows when they say (``higher_is_better``), else gankit's list
(:data:`gankit.runs.record.HIGHER_IS_BETTER`).
"""

from __future__ import annotations

from typing import Any

from gankit.runs.record import HIGHER_IS_BETTER, RunRecord


def higher_is_better(metric: str, rows: list[dict[str, Any]] = ()) -> bool:
    """Whether larger values of ``metric`` are better: what its rows say (``higher_is_better``), else gankit's list.

    Every direction gankit's comparisons use comes from here.
    """
    for row in rows:
        if isinstance(row.get("higher_is_better"), bool):
            return row["higher_is_better"]
    return metric.lower() in HIGHER_IS_BETTER


def arrow(metric: str, rows: list[dict[str, Any]] = ()) -> str:
    """↑ for a metric where higher is better, ↓ where lower is."""
    return "↑" if higher_is_better(metric, rows) else "↓"


def metric_rows(runs: list[RunRecord], metric: str) -> list[dict[str, Any]]:
    """The runs' final rows of ``metric`` (what says how it was measured, and its direction)."""
    return [row for r in runs if (row := r.final_row(metric)) is not None]


def titled(metric: str, runs: list[RunRecord] = ()) -> str:
    """``fid↓``: the metric with the direction that is better."""
    return f"{metric}{arrow(metric, metric_rows(list(runs), metric))}"
