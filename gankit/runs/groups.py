"""Grouped comparisons: runs that share settings (all but the seed) pooled, with intervals.

Each group's number for a metric is the mean of its finished runs' final
values (each run's last evaluation) with a 95% interval: Student t over the
runs, or a seeded bootstrap (``--ci bootstrap``); a metric no run has a
negative value of always gets the bootstrap, whose interval stays within the
values (t's, for three runs, can reach far below 0). Against a baseline group
each other group gets the difference of means, its interval and Welch's
p-value, and a plain verdict. Values are pooled or compared only when they
were measured alike (:data:`gankit.rundir.record.MATCHING_PROVENANCE`); a
metric whose provenance differs is left out, the difference named.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gankit.core.errors import GankitError, suggestion
from gankit.rundir.record import RunRecord
from gankit.runs.compare import cell, median_rate, provenance_conflict
from gankit.runs.direction import higher_is_better, metric_rows, titled
from gankit.runs.intervals import own_interval, shown_metric
from gankit.runs.settings import config_of, differing_keys, value_text
from gankit.runs.stats import Difference, Interval, difference, interval_method, mean_interval

MAX_GROUP_METRICS = 3
# Settings that never make two runs different groups: the replicate axis and bookkeeping.
NOT_A_SETTING = ("seed",)


@dataclass
class Group:
    label: str  # loss.name=bce, optim.g.lr=0.0002
    values: dict[str, str]  # group key -> value text
    runs: list[RunRecord] = field(default_factory=list)

    @property
    def finished(self) -> list[RunRecord]:
        return [r for r in self.runs if r.status == "finished"]

    def values_of(self, metric: str) -> list[float]:
        return [v for r in self.finished if (v := r.final(metric)) is not None]

    def status_text(self) -> str:
        counts: dict[str, int] = {}
        for run in self.runs:
            counts[run.status] = counts.get(run.status, 0) + 1
        return ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: kv[0] != "finished"))

    def only(self, keep) -> "Group":
        """The group with only the runs ``keep(run)`` accepts (same label)."""
        return Group(self.label, self.values, [r for r in self.runs if keep(r)])

    def median_run(self, metric: str | None) -> RunRecord | None:
        """The run whose final ``metric`` is the median of the group's (the lower one of an even count)."""
        pool = self.finished or self.runs
        scored = sorted((v, i) for i, r in enumerate(pool) if metric and (v := r.final(metric)) is not None)
        if scored:
            return pool[scored[(len(scored) - 1) // 2][1]]
        return pool[0] if pool else None


def loss_kind(run: RunRecord) -> str:
    """The kind of a run's losses, which decides whether two runs' loss values share an axis: its ``loss.name``."""
    loss = run.recipe.get("loss")
    return str(loss.get("name", "?")) if isinstance(loss, dict) else "?"


def setting_value(run: RunRecord, key: str) -> str | None:
    """A run's value of ``key``: a leaf (``loss.name``) or a whole section (``loss``)."""
    node = run.recipe
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return value_text(node)


def group_keys(runs: list[RunRecord], spec: str) -> list[str]:
    """``--group-by loss.name,optim.g.lr``, each key checked against the runs' recipes (did-you-mean)."""
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    known = sorted(set().union(*(config_of(r) for r in runs)) if runs else set())
    sections = {k.split(".")[0] for k in known}
    for key in keys:
        if not any(setting_value(r, key) is not None for r in runs):
            raise GankitError(f"--group-by {key}: no run's recipe has this key{suggestion(key, known)}"
                              + ("" if suggestion(key, known) else f"\n    sections: {', '.join(sorted(sections))}"))
    return keys


def make_groups(runs: list[RunRecord], keys: list[str]) -> list[Group]:
    groups: dict[tuple, Group] = {}
    for run in runs:
        values = {k: setting_value(run, k) or "-" for k in keys}
        key = tuple(values.values())
        if key not in groups:
            groups[key] = Group(", ".join(f"{k}={v}" for k, v in values.items()), values)
        groups[key].runs.append(run)
    return list(groups.values())


def mixed_settings(groups: list[Group], keys: list[str]) -> list[str]:
    """Notes for groups whose runs differ in more than the seed and the grouping keys."""
    notes = []
    for g in groups:
        other = [k for k in differing_keys(g.runs)
                 if k not in NOT_A_SETTING and not any(k == key or k.startswith(key + ".") for key in keys)]
        if other:
            notes.append(f"{g.label}: its runs also differ in {', '.join(other[:5])}; group by these too "
                         f"(--group-by {','.join(keys + other[:2])}) to separate them")
    return notes


def comparable_metrics(groups: list[Group], metrics: list[str], requested: str | None) -> tuple[list[str], list[str]]:
    """The metrics whose final values were all measured alike, and a note for each left out."""
    runs = [r for g in groups for r in g.finished]
    keep, notes = [], []
    for m in metrics:
        conflict = provenance_conflict(runs, m, [f"{r.id}" for r in runs])
        if conflict is None:
            keep.append(m)
        elif m == requested:
            raise GankitError(conflict + "; compare runs measured alike (same extractor, weights, sample "
                                         "counts and reference set)")
        else:
            notes.append(conflict)
    return keep, notes


def _interval_text(low: float | None, high: float | None) -> str:
    return "-" if low is None else f"[{low:.4g}, {high:.4g}]"


def _steps_text(runs: list[RunRecord]) -> str:
    steps = sorted({r.digest().steps for r in runs})
    if not steps:
        return "-"
    return str(steps[0]) if len(steps) == 1 else f"{steps[0]}-{steps[-1]}"


def metric_method(groups: list[Group], metric: str, method: str) -> str:
    """The interval for ``metric``'s group means: the bootstrap when no run's value is negative, else ``method``."""
    return interval_method([v for g in groups for v in g.values_of(metric)], method)


def _higher(groups: list[Group], metric: str) -> bool:
    return higher_is_better(metric, metric_rows([r for g in groups for r in g.runs], metric))


def summary(group: Group, metric: str, method: str, seed: int,
            higher: bool | None = None) -> tuple[Interval, float | None, float | None]:
    """The group's mean of ``metric`` with its interval (``method`` as chosen), and its best and worst value."""
    values = group.values_of(metric)
    interval = own_interval(group.finished, metric) or mean_interval(values, method, seed)
    if not values:
        return interval, None, None
    higher = higher_is_better(metric, metric_rows(group.runs, metric)) if higher is None else higher
    return interval, (max(values) if higher else min(values)), (min(values) if higher else max(values))


def group_table(groups: list[Group], metrics: list[str], method: str = "t",
                seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """One row per group; per metric (``fid↓``: lower is better) the mean, its 95% CI, the best and worst run."""
    header = ["group", "n", "status", "steps"]
    runs = [r for g in groups for r in g.finished]
    for m in metrics:
        name = titled(m, runs, shown_metric(runs, m))  # fid10k↓: its sample budget and direction
        header += [f"{name} mean", f"{name} 95% CI", f"{name} best", f"{name} worst"]
    header.append("img/s")
    methods = {m: metric_method(groups, m, method) for m in metrics}
    rows = []
    for g in groups:
        cells = [g.label, str(len(g.finished)), g.status_text(), _steps_text(g.finished or g.runs)]
        for m in metrics:
            interval, best, worst = summary(g, m, methods[m], seed, _higher(groups, m))
            mean = cell(interval.mean) if interval.n else "-"
            if interval.n and interval.n < len(g.finished):
                mean += f" (n={interval.n})"
            cells += [mean, _interval_text(interval.low, interval.high), cell(best), cell(worst)]
        rates = [v for r in g.finished if (v := median_rate(r)) is not None]
        cells.append(cell(sum(rates) / len(rates)) if rates else "-")
        rows.append(cells)
    return header, rows


def _same(a: str, b: str) -> bool:
    """A group's value and one typed on the command line: 2e-4 matches 0.0002, True matches true."""
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b or a.lower() == b.lower()


def find_baseline(groups: list[Group], spec: str, keys: list[str]) -> Group:
    """The group ``--baseline KEY=VALUE[,KEY=VALUE]`` names."""
    wanted = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise GankitError(f"--baseline '{spec}' is not of the form KEY=VALUE (e.g. --baseline loss.name=bce)")
        if key not in keys:
            raise GankitError(f"--baseline {key}: the runs are grouped by {', '.join(keys) or 'nothing'}, not {key}"
                              f"{suggestion(key, keys)}")
        wanted[key] = value.strip()
    hits = [g for g in groups if all(_same(g.values[k], v) for k, v in wanted.items())]
    if len(hits) != 1:
        listed = "; ".join(g.label for g in groups)
        what = "no group" if not hits else f"{len(hits)} groups"
        raise GankitError(f"--baseline {spec}: {what} matches; the groups are: {listed}")
    return hits[0]


def verdict(metric: str, base: Interval, other: Interval, diff: Difference, higher: bool | None = None) -> str:
    n = f"n={base.n}" if base.n == other.n else f"n={base.n} vs {other.n}"
    if diff.low is None:
        return f"no interval at {n}: not distinguishable"
    if base.overlaps(other):
        if diff.low <= 0 <= diff.high:
            return f"intervals overlap: not distinguishable at {n}"
        p = f", p={diff.p:.2g}" if diff.p is not None else ""
        return f"intervals overlap; the difference's interval excludes 0{p}: weak evidence at {n}"
    better = (diff.diff > 0) == (higher_is_better(metric) if higher is None else higher)
    return f"{'better' if better else 'worse'} than the baseline (intervals apart at {n})"


def baseline_table(groups: list[Group], base: Group, metrics: list[str], method: str = "t",
                   seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """Each other group against ``base``: per metric (``fid↓``) the difference of means, its CI, Welch's p, a verdict.

    The verdict's intervals are the group table's (the bootstrap for a
    metric without negative values); the difference's is Welch's t or ``method``.
    """
    header = ["group", "metric", "difference", "95% CI", "Welch p", "verdict"]
    runs = [r for g in groups for r in g.runs]
    rows = []
    for g in groups:
        if g is base:
            continue
        for m in metrics:
            a, b = base.values_of(m), g.values_of(m)
            name = titled(m, runs)
            if not a or not b:
                rows.append([g.label, name, "-", "-", "-", "no values to compare"])
                continue
            d = difference(a, b, method, seed)
            own = metric_method(groups, m, method)
            higher = _higher(groups, m)
            ia, ib = summary(base, m, own, seed, higher)[0], summary(g, m, own, seed, higher)[0]
            if d.low is None and ia.low is not None and ib.low is not None:  # one run each, own intervals
                said = verdict(m, ia, ib, Difference(d.diff, d.diff, d.diff, None, None), higher)
                said = said.replace("intervals", "one run each: bootstrap intervals", 1) if "intervals" in said \
                    else said
            else:
                said = verdict(m, mean_interval(a, own, seed), mean_interval(b, own, seed), d, higher)
            rows.append([g.label, name, f"{d.diff:+.4g}", _interval_text(d.low, d.high),
                         "-" if d.p is None else f"{d.p:.3g}", said])
    return header, rows


def describe(groups: list[Group], keys: list[str], method: str, metrics: list[str] | None = None) -> str:
    n = sum(len(g.runs) for g in groups)
    ci = "seeded bootstrap of the mean" if method == "bootstrap" else \
        "Student t over the runs (a seeded bootstrap for metrics without negative values)"
    single = [g.label for g in groups if any(own_interval(g.finished, m) for m in metrics or [])]
    if single:  # one seed: the run's own interval is all there is
        ci += ("; a group of one run shows that run's own 95% bootstrap interval over its real and generated "
               f"features instead ({', '.join(single[:3])}{' ...' if len(single) > 3 else ''})")
    return (f"{n} runs in {len(groups)} groups by {', '.join(keys)}; each finished run's final value (its last "
            f"evaluation); 95% CI: {ci}; ↓ lower is better, ↑ higher")


@dataclass
class Comparison:
    """What ``gankit compare`` and ``gankit report`` show for a selection of runs."""

    runs: list[RunRecord]
    metric: str | None  # plotted and listed first
    keys: list[str] = field(default_factory=list)  # group keys; none: per run
    groups: list[Group] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)  # the grouped table's metrics (provenance matching)
    base: Group | None = None
    notes: list[str] = field(default_factory=list)
    method: str = "t"
    seed: int = 0


def build(selection, metric: str | None, group_by: str | None, baseline: str | None, method: str = "t",
          seed: int = 0) -> Comparison:
    """Choose the metric, group the runs (``group_by``, else the sweeps' grid axes) and find the baseline."""
    from gankit.runs.compare import choose_metric, recorded_metrics, skipped_notes, table_notes

    runs = selection.runs
    chosen = choose_metric(runs, metric)
    spec = group_by if group_by is not None else ",".join(selection.axes)
    keys = [] if spec.strip().lower() in ("", "none") else group_keys(runs, spec)
    if baseline and not keys:
        raise GankitError("--baseline compares groups: give --group-by KEY (or compare a sweep directory)")
    c = Comparison(runs, chosen, keys, method=method, seed=seed, notes=list(selection.notes))
    if not keys:
        c.notes += table_notes(runs, chosen)
        return c
    c.groups = make_groups(runs, keys)
    ordered = ([chosen] + [m for m in recorded_metrics(runs) if m != chosen]) if chosen else []
    c.metrics, left_out = comparable_metrics(c.groups, ordered[:MAX_GROUP_METRICS], metric)
    c.base = find_baseline(c.groups, baseline, keys) if baseline else None
    c.notes += left_out + mixed_settings(c.groups, keys) + list(skipped_notes(runs, by_metric=False).values())
    if c.metric not in c.metrics:
        c.metric = None  # its values cannot be pooled: plot the losses only
    return c


def median_grids(c: Comparison) -> list[tuple[str, RunRecord]]:
    """(caption, run) whose last sample grid stands for each group: its median run by the metric."""
    out = []
    for g in c.groups:
        run = g.median_run(c.metric)
        if run is not None and run.samples:
            out.append((f"{g.label} (median run {run.id})" if c.metric else f"{g.label} ({run.id})", run))
    return out
