"""What ``gankit compare`` shows of one evaluation's own uncertainty and sample budget.

A row records its sample budget (``num_real``, ``num_fake``, and ``budget_name`` such as ``fid10k``)
and, for FID, KID and FD-DINOv2, its 95% bootstrap interval over its own real and generated features
(``ci_low``, ``ci_high``; :mod:`gankit.eval.bootstrap`). Compare heads its columns with the budget the
runs share, shows a run's interval beside its final value, uses it for a group of one run (one seed:
no spread over seeds to estimate), and never pools or ranks numbers from different budgets.
"""

from __future__ import annotations

from gankit.rundir.record import RunRecord, number
from gankit.runs.stats import Interval


def cell(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def budget_note(runs: list[RunRecord], metric: str) -> str:
    """The end of a provenance conflict over num_real / num_fake: the budgets by name."""
    budgets = sorted({str(r["budget_name"]) for run in runs if (r := run.final_row(metric)) and r.get("budget_name")})
    if len(budgets) > 1:
        return f" (sample budgets {' vs '.join(budgets)}: not pooled or ranked)"
    return " (different sample budgets: not pooled or ranked)"


def shown_metric(runs: list[RunRecord], metric: str) -> str:
    """``metric`` as the table heads it: with the sample budget its runs share (``fid10k``), else as it is."""
    names = {r.get("budget_name") for run in runs if (r := run.final_row(metric)) is not None}
    return str(names.pop()) if len(names) == 1 and None not in names else metric


def final_text(run: RunRecord, metric: str) -> str:
    """A run's final value with its own 95% bootstrap interval when it has one: ``41.23 [40.71, 41.8]``."""
    row = run.final_row(metric)
    if row is None or number(row.get("ci_low")) is None or number(row.get("ci_high")) is None:
        return cell(run.final(metric))
    return f"{cell(number(row['value']))} [{cell(number(row['ci_low']))}, {cell(number(row['ci_high']))}]"


def interval_note(runs: list[RunRecord], metrics: list[str]) -> str | None:
    """Which interval the brackets are (a run's bootstrap over its own features), when some run has one."""
    rows = [r for run in runs for m in metrics if (r := run.final_row(m)) is not None and r.get("ci_low") is not None]
    if not rows:
        return None
    how = sorted({f"{r.get('ci_resamples')} resamples, seed {r.get('ci_seed')}" for r in rows})
    return (f"[low, high]: the run's own 95% interval, a {rows[0].get('ci_method', 'bootstrap')} "
            f"({'; '.join(how)}): one evaluation's sampling uncertainty, not a spread over seeds")


def own_interval(runs: list[RunRecord], metric: str) -> Interval | None:
    """A group of one finished run: that run's own 95% bootstrap interval (over its features), if recorded."""
    runs = [r for r in runs if r.final(metric) is not None]
    row = runs[0].final_row(metric) if len(runs) == 1 else None
    if row is None or number(row.get("ci_low")) is None or number(row.get("ci_high")) is None:
        return None
    return Interval(number(row["value"]), number(row["ci_low"]), number(row["ci_high"]), 1)
