"""How an evaluation row names and shows its number: the sample budget in the name, the interval beside it.

StyleGAN2-ADA names its metrics by their sample budget (``fid50k_full``: 50,000 generated images
against the whole reference set), so that two numbers from different budgets are never read as
one. gankit's rows keep ``metric`` ("fid", what runs are grouped by) and add ``budget_name``:
``fid10k`` (10,000 generated against 10,000 real), ``fid10k_full`` (against all the reference
images), ``fid10k_r5k`` (against 5,000 real), ``is10k`` (IS reads no real images),
``fd_dinov2_10k`` (a name ending in a digit gets an underscore).
"""

from __future__ import annotations

from typing import Any


def count_text(n: int) -> str:
    """10000 -> "10k", 50000 -> "50k", 2500 -> "2.5k", 500 -> "500", 1200000 -> "1.2M"."""
    for size, suffix in ((1_000_000, "M"), (1000, "k")):
        if n >= size and (n * 10) % size == 0:
            return f"{n / size:g}{suffix}"
    return str(n)


def budget_name(metric: str, num_fake: int, num_real: int | None, full: bool) -> str:
    """``fid`` measured on 10,000 generated and all real images -> ``fid10k_full`` (``prdc/recall`` ->
    ``prdc10k_full/recall``); ``num_real`` None for a metric that reads no real images."""
    base, sep, part = metric.partition("/")
    name = f"{base}{'_' if base[-1:].isdigit() else ''}{count_text(num_fake)}"  # fd_dinov2_10k, not fd_dinov210k
    if num_real is not None:
        if full:
            name += "_full"
        elif num_real != num_fake:
            name += f"_r{count_text(num_real)}"
    return name + sep + part


def interval_fields(value) -> dict[str, Any]:
    """The row keys of a metric value's interval (none when it has none)."""
    if getattr(value, "interval", None) is None:
        return {}
    low, high = value.interval
    return {"ci_low": low, "ci_high": high}


def shown_name(row: dict[str, Any]) -> str:
    return str(row.get("budget_name") or row.get("metric"))


def value_text(row: dict[str, Any], digits: int = 4) -> str:
    """``41.23 [40.71, 41.8]``, ``0.0123 ± 0.0011 [0.011, 0.0135]``: the value, its std, its interval."""
    text = f"{row['value']:.{digits}g}"
    if row.get("std") is not None:
        text += f" ± {row['std']:.3g}"
    if row.get("ci_low") is not None and row.get("ci_high") is not None:
        text += f" [{row['ci_low']:.{digits}g}, {row['ci_high']:.{digits}g}]"
    return text


def interval_cost(rows: list[dict[str, Any]]) -> str:
    """``"the intervals took 0.84 s, 2.1% of the feature pass (40.3 s)"``: what one evaluation's intervals cost
    against the time its images spent in the feature extractors (generated ones; real ones when not cached)."""
    spent = sum(row.get("ci_seconds") or 0 for row in rows)
    passes = {row.get("feature_seconds") for row in rows} - {None}  # one evaluation: the same on every row
    text = f"the intervals took {spent:.2f} s"
    if passes and max(passes) > 0:
        feature = max(passes)
        text += f", {100 * spent / feature:.1f}% of the feature pass ({feature:.1f} s)"
    return text
