"""The statistics of grouped comparisons: Student t, Welch's test, the bootstrap, the verdicts.

No runs: numbers against printed tables (and SciPy where installed), and
groups of hand-made run records for provenance matching and the verdicts.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from gankit.core.errors import GankitError
from gankit.runs import groups as G
from gankit.rundir.record import RunRecord
from gankit.runs.stats import Interval, difference, mean_interval, t_cdf, t_quantile, welch

# t(0.975, df) from any printed table.
T_TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 30: 2.042, 1000: 1.962}


@pytest.mark.parametrize("df,t", sorted(T_TABLE.items()))
def test_t_quantiles_match_the_table(df, t):
    assert t_quantile(0.975, df) == pytest.approx(t, abs=5e-4)
    assert t_cdf(t_quantile(0.975, df), df) == pytest.approx(0.975, abs=1e-10)
    assert t_quantile(0.025, df) == pytest.approx(-t, abs=5e-4)


def test_against_scipy_including_fractional_degrees_of_freedom():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 1.5, 2.7, 4, 7.3, 25, 300):
        for x in (-3.1, -0.4, 0.0, 0.9, 2.5, 8.0):
            assert t_cdf(x, df) == pytest.approx(stats.t.cdf(x, df), abs=1e-12)
        assert t_quantile(0.975, df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-9)
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.normal(0, 1, 4), rng.normal(0.5, 2, 6)
        t, df, p = welch(list(a), list(b))
        ref = stats.ttest_ind(b, a, equal_var=False)
        assert (t, p) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-9)


def test_mean_interval_is_student_t_over_the_values():
    values = [1.0, 1.2, 0.9]
    iv = mean_interval(values)
    s = np.std(values, ddof=1)
    half = 4.302652729749 * s / math.sqrt(3)
    assert (iv.mean, iv.low, iv.high, iv.n) == pytest.approx((np.mean(values), np.mean(values) - half,
                                                              np.mean(values) + half, 3))
    one = mean_interval([2.0])
    assert one.mean == 2.0 and one.low is None and one.high is None  # one value: no interval


def test_bootstrap_is_seeded_and_inside_the_range():
    values = list(np.random.default_rng(1).normal(3.0, 1.0, 12))
    a, b = mean_interval(values, "bootstrap", seed=7), mean_interval(values, "bootstrap", seed=7)
    assert (a.low, a.high) == (b.low, b.high)
    assert (a.low, a.high) != (mean_interval(values, "bootstrap", seed=8).low,
                               mean_interval(values, "bootstrap", seed=8).high)
    assert min(values) <= a.low < a.mean < a.high <= max(values)
    d = difference([1.0, 1.1, 0.9], [2.0, 2.2, 1.9], "bootstrap", seed=0)
    assert d.low <= d.diff <= d.high and d.low > 0


def test_difference_interval_and_p_value():
    a, b = [1.0, 1.2, 0.9], [1.5, 1.7, 1.4, 1.9]
    d = difference(a, b)
    assert d.diff == pytest.approx(np.mean(b) - np.mean(a))
    assert d.low < d.diff < d.high and 0 < d.p < 0.05
    half = t_quantile(0.975, d.df) * math.sqrt(np.var(a, ddof=1) / 3 + np.var(b, ddof=1) / 4)
    assert (d.low, d.high) == pytest.approx((d.diff - half, d.diff + half))
    assert difference([1.0], [2.0, 3.0]).p is None  # one run on a side: nothing to test


def test_verdicts_say_plainly_when_runs_cannot_be_told_apart():
    wide_a, wide_b = Interval(10, 5, 15, 3), Interval(11, 6, 16, 3)
    same = difference([5, 10, 15], [6, 11, 16])
    assert G.verdict("fid", wide_a, wide_b, same) == "intervals overlap: not distinguishable at n=3"
    apart = difference([10, 10.1, 9.9], [5, 5.1, 4.9])
    assert G.verdict("fid", mean_interval([10, 10.1, 9.9]), mean_interval([5, 5.1, 4.9]), apart).startswith(
        "better than the baseline")  # lower FID is better
    assert G.verdict("is", mean_interval([10, 10.1, 9.9]), mean_interval([5, 5.1, 4.9]), apart).startswith("worse")
    assert "no interval at n=1" in G.verdict("fid", mean_interval([1.0]), mean_interval([2.0]),
                                             difference([1.0], [2.0]))


# -- groups of hand-made records ------------------------------------------------------------------------
def record(tmp: Path, name: str, loss: str, seed: int, value: float, **prov) -> RunRecord:
    row = {"kind": "eval", "step": 10, "metric": "fid", "value": value, "feature_extractor": "inception",
           "weights_sha256": "abc", "num_real": 100, "num_fake": 100, "reference": {"dataset": "digits"}, **prov}
    rows = [{"kind": "train", "step": 10, "loss_d": 1.0, "loss_g": 1.0, "img_per_s": 50.0}, row,
            {"kind": "end", "status": "finished"}]
    return RunRecord(tmp / name, {"name": "t", "seed": seed, "loss": {"name": loss}}, rows)


def test_groups_pool_seeds_and_refuse_mismatched_provenance(tmp_path):
    runs = [record(tmp_path, f"r{i}", loss, seed, 10.0 + i) for i, (loss, seed) in
            enumerate([("bce", 1), ("bce", 2), ("hinge", 1), ("hinge", 2)])]
    groups = G.make_groups(runs, ["loss.name"])
    assert [(g.label, len(g.finished)) for g in groups] == [("loss.name=bce", 2), ("loss.name=hinge", 2)]
    assert groups[0].values_of("fid") == [10.0, 11.0]
    header, rows = G.group_table(groups, ["fid"])
    assert rows[0][header.index("fid↓ mean")] == "10.5" and rows[0][header.index("fid↓ best")] == "10"
    assert G.comparable_metrics(groups, ["fid"], None) == (["fid"], [])

    runs[3] = record(tmp_path, "r3", "hinge", 2, 13.0, num_fake=50)
    groups = G.make_groups(runs, ["loss.name"])
    kept, notes = G.comparable_metrics(groups, ["fid"], None)
    assert kept == [] and "num_fake differs" in notes[0] and "r3" in notes[0]
    with pytest.raises(GankitError, match="num_fake differs"):
        G.comparable_metrics(groups, ["fid"], "fid")  # asked for by name: refused, the difference named


def test_baseline_is_found_by_value_with_did_you_mean(tmp_path):
    runs = [record(tmp_path, f"r{i}", loss, 1, 1.0) for i, loss in enumerate(["bce", "hinge"])]
    groups = G.make_groups(runs, ["loss.name"])
    assert G.find_baseline(groups, "loss.name=hinge", ["loss.name"]) is groups[1]
    with pytest.raises(GankitError, match="did you mean 'loss.name'"):
        G.find_baseline(groups, "loss.nam=bce", ["loss.name"])
    with pytest.raises(GankitError, match="no group matches; the groups are: loss.name=bce; loss.name=hinge"):
        G.find_baseline(groups, "loss.name=wgan", ["loss.name"])
    with pytest.raises(GankitError, match="did you mean 'loss.name'"):
        G.group_keys(runs, "loss.nmae")
