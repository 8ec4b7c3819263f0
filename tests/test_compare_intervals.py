"""`gankit compare` with one evaluation's own interval and its sample budget: shown in the per-run table, used for
groups of one run (and said so), and different budgets never pooled or ranked."""

from __future__ import annotations

import pytest
from test_compare_stats import record

from gankit.core.errors import GankitError
from gankit.runs import groups as G
from gankit.runs.compare import format_table, table_notes, table_rows

CI = {"ci_resamples": 50, "ci_seed": 0, "ci_method": "percentile bootstrap over resampled real and generated features"}


def test_the_per_run_table_names_the_budget_and_shows_each_runs_interval(tmp_path):
    runs = [record(tmp_path, "a", "bce", 1, 41.23, ci_low=40.71, ci_high=41.8, budget_name="fid100", **CI),
            record(tmp_path, "b", "hinge", 1, 38.5, ci_low=38.0, ci_high=39.1, budget_name="fid100", **CI)]
    header, rows = table_rows(runs, "fid")
    assert "fid100↓ final" in header and rows[0][header.index("fid100↓ final")] == "41.23 [40.71, 41.8]"
    notes = table_notes(runs, "fid")
    assert any("the run's own 95% interval" in n and "50 resamples, seed 0" in n for n in notes)
    assert "41.23 [40.71, 41.8]" in format_table(header, rows)


def test_groups_of_one_run_use_its_own_interval_and_say_so(tmp_path):
    runs = [record(tmp_path, "a", "bce", 1, 41.0, ci_low=40.5, ci_high=41.5, budget_name="fid100", **CI),
            record(tmp_path, "b", "hinge", 1, 30.0, ci_low=29.5, ci_high=30.6, budget_name="fid100", **CI),
            record(tmp_path, "c", "wgan", 1, 41.2, ci_low=40.6, ci_high=41.9, budget_name="fid100", **CI)]
    groups = G.make_groups(runs, ["loss.name"])
    header, rows = G.group_table(groups, ["fid"])
    assert rows[0][header.index("fid100↓ 95% CI")] == "[40.5, 41.5]" and header[4] == "fid100↓ mean"
    text = G.describe(groups, ["loss.name"], "t", ["fid"])
    assert "a group of one run shows that run's own 95% bootstrap interval" in text
    _, rows = G.baseline_table(groups, groups[0], ["fid"])
    verdicts = {r[0]: r[-1] for r in rows}
    assert verdicts["loss.name=hinge"].startswith("better than the baseline (one run each: bootstrap intervals apart")
    assert "one run each: bootstrap intervals overlap" in verdicts["loss.name=wgan"]


def test_without_recorded_intervals_one_run_still_has_no_interval(tmp_path):
    runs = [record(tmp_path, "a", "bce", 1, 41.0), record(tmp_path, "b", "hinge", 1, 30.0)]
    groups = G.make_groups(runs, ["loss.name"])
    header, rows = G.group_table(groups, ["fid"])
    assert rows[0][header.index("fid↓ 95% CI")] == "-"
    assert "no interval at n=1" in G.baseline_table(groups, groups[0], ["fid"])[1][0][-1]


def test_different_sample_budgets_are_refused_by_name(tmp_path):
    runs = [record(tmp_path, "a", "bce", 1, 41.0, budget_name="fid100"),
            record(tmp_path, "b", "bce", 2, 42.0, budget_name="fid100"),
            record(tmp_path, "c", "hinge", 1, 60.0, num_fake=50, budget_name="fid50_r100")]
    groups = G.make_groups(runs, ["loss.name"])
    with pytest.raises(GankitError, match=r"num_fake differs .*sample budgets fid100 vs fid50_r100: not pooled"):
        G.comparable_metrics(groups, ["fid"], "fid")
    assert any("sample budgets fid100 vs fid50_r100" in n for n in table_notes(runs, "fid"))
    header, _ = table_rows(runs, "fid")
    assert "fid↓ final" in header  # no single budget to name
