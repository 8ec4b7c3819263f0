"""What an evaluation's intervals cost against its feature pass (rows' ``feature_seconds``, the closing note),
and per-class FID's exact full-rank route. Fast: the tiny extractor of test_eval_evaluator, a counting clock."""

from __future__ import annotations

import pytest
import torch
from test_eval_evaluator import NZ, env, evaluator, generate, make_recipe  # noqa: F401 (env: a fixture)
from test_eval_stats import _features, measure

from gankit.eval import bootstrap, extractors
from gankit.eval.rows import interval_cost


class Clock:
    """``perf_counter`` that advances one second per reading: one extract call (two readings) = one second."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


def test_rows_carry_the_seconds_their_images_spent_in_the_extractor(env, monkeypatch):
    monkeypatch.setattr(extractors, "time", Clock())
    ev = evaluator(make_recipe(env, metrics=["fid", "kid", "swd"], batch_size=32))  # 80 real, 60 generated
    ev.prepare()
    first = ev.evaluate(generate, NZ, step=10)
    assert {row["feature_seconds"] for row in first} == {5.0}  # 3 real batches + 2 generated batches
    later = ev.evaluate(generate, NZ, step=20)
    assert {row["feature_seconds"] for row in later} == {2.0}  # the reference features are held: generated only
    assert all(row["ci_seconds"] >= 0 for row in later if row["metric"] in ("fid", "kid"))


def test_the_closing_note_sets_the_intervals_against_the_feature_pass(env, monkeypatch, capsys):
    from gankit.commands.eval import _print_table

    monkeypatch.setattr(extractors, "time", Clock())
    ev = evaluator(make_recipe(env, metrics=["fid", "kid"]))
    ev.prepare()
    rows = ev.evaluate(generate, NZ, step=10)
    capsys.readouterr()
    _print_table(rows)
    out = capsys.readouterr().out
    spent = sum(row["ci_seconds"] for row in rows)
    assert f"the intervals took {spent:.2f} s, {100 * spent / 5.0:.1f}% of the feature pass (5.0 s)" in out
    assert "[intervals]: 95% percentile bootstrap" in out


def test_interval_cost_text():
    rows = [{"ci_seconds": 0.3, "feature_seconds": 4.0}, {"ci_seconds": 0.1, "feature_seconds": 4.0},
            {"ci_seconds": None, "feature_seconds": 4.0}]
    assert interval_cost(rows) == "the intervals took 0.40 s, 10.0% of the feature pass (4.0 s)"
    assert interval_cost([{"ci_seconds": 0.25}]) == "the intervals took 0.25 s"  # rows from before the field


def test_the_exact_route_is_torchmetrics_fid_in_float64_where_resamples_use_float32():
    real, fake = _features(400, 24, 7), _features(350, 24, 8, shift=0.2)  # more images than dimensions
    (fid,) = measure("fid", real, fake, resamples=0)
    ones = torch.ones
    exact = bootstrap.frechet_weighted(real, ones(400), fake, ones(350), exact=True)
    assert exact == pytest.approx(fid.value, rel=1e-9)
    assert bootstrap.frechet_weighted(real, ones(400), fake, ones(350)) == pytest.approx(fid.value, rel=1e-4)


def _per_class(resamples: int, seed: int = 4):
    import gankit

    metric = gankit.registry("metrics").build("fid_per_class", resamples=resamples)
    metric.name = "fid_per_class"
    real, fake = _features(90, 40, 1), _features(60, 40, 2, shift=0.3)  # 3 classes: 30 real, 20 generated each
    y_real, y_fake = torch.arange(90) % 3, torch.arange(60) % 3
    metric.update(real, real=True, labels=y_real)
    metric.update(fake, real=False, labels=y_fake)
    groups = [(real[y_real == c], fake[y_fake == c]) for c in range(3)]
    return metric.compute(seed), groups


def test_per_class_rows_carry_an_interval_resampled_within_each_class():
    from gankit.eval.rng import torch_generator

    (mean, worst), groups = _per_class(20)
    draws = bootstrap.frechet_resamples_by_class(groups, 20, seed=4)
    assert draws.shape == (3, 20)
    assert mean.interval == bootstrap.percentiles(draws.mean(0))
    assert worst.interval == bootstrap.percentiles(draws.max(0))
    assert mean.interval[0] < mean.interval[1] and mean.interval[1] <= worst.interval[1]
    assert mean.details["ci_resamples"] == 20 and mean.details["ci_method"].endswith("within each class")
    # each draw is the FID of an explicit resample of that class's images, drawn in class order
    g = torch_generator(4, "bootstrap")
    for c, (real, fake) in enumerate(groups):
        w_real, w_fake = bootstrap.counts(real.shape[0], 20, g), bootstrap.counts(fake.shape[0], 20, g)
        explicit_r = torch.repeat_interleave(real, w_real[0].long(), dim=0)
        explicit_f = torch.repeat_interleave(fake, w_fake[0].long(), dim=0)
        (fid,) = measure("fid", explicit_r, explicit_f, resamples=0)
        assert draws[c, 0] == pytest.approx(fid.value, rel=1e-6)
    assert _per_class(20)[0][0].interval == mean.interval  # seeded
    assert _per_class(20, seed=5)[0][0].interval != mean.interval
    assert [v.interval for v in _per_class(0)[0]] == [None, None]
