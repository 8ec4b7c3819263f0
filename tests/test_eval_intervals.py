"""The 95% bootstrap interval on FID, KID and FD rows (gankit.eval.bootstrap), on given features: its algebra
against direct computations, its seed, and that its width is the spread of the number over fresh draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_eval_stats import _features, measure

from gankit.eval import bootstrap
from gankit.eval.rng import torch_generator


@pytest.mark.parametrize("n_real,n_fake,d", [(300, 307, 16), (20, 27, 32), (10, 300, 16)])  # both routes
def test_frechet_is_torchmetrics_fid_with_more_and_fewer_samples_than_dimensions(n_real, n_fake, d):
    real, fake = _features(n_real, d, 0), _features(n_fake, d, 1, shift=0.2)
    (fid,) = measure("fid", real, fake, resamples=0)
    ones = torch.ones
    assert bootstrap.frechet_weighted(real, ones(n_real), fake, ones(n_fake)) == pytest.approx(fid.value, rel=1e-5)


def test_a_weighted_resample_is_the_explicit_resample():
    real, fake = _features(40, 8, 2), _features(50, 8, 3, shift=0.1)
    g = torch_generator(0, "test")
    wr, wf = bootstrap.counts(40, 1, g)[0], bootstrap.counts(50, 1, g)[0]
    explicit_r = torch.repeat_interleave(real, wr.long(), dim=0)
    explicit_f = torch.repeat_interleave(fake, wf.long(), dim=0)
    (fid,) = measure("fid", explicit_r, explicit_f, resamples=0)
    assert bootstrap.frechet_weighted(real, wr, fake, wf) == pytest.approx(fid.value, rel=1e-6)


def _mmd_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """KID's unbiased MMD² over all pairs of distinct positions, directly."""
    d = x.shape[1]
    k = lambda a, b: ((a.double() @ b.double().T) / d + 1) ** 3  # noqa: E731
    m, n = x.shape[0], y.shape[0]
    kxx, kyy = k(x, x), k(y, y)
    return float((kxx.sum() - kxx.trace()) / (m * (m - 1)) + (kyy.sum() - kyy.trace()) / (n * (n - 1))
                 - 2 * k(x, y).mean())


def test_the_kid_resamples_are_the_unbiased_mmd_of_the_explicit_resamples(monkeypatch):
    real, fake = _features(30, 8, 3), _features(25, 8, 4, shift=0.3)
    monkeypatch.setattr(bootstrap, "BLOCK", 7)  # several blocks, uneven
    seen = []
    monkeypatch.setattr(bootstrap, "percentiles", lambda values: seen.append(np.asarray(values)) or (0.0, 0.0))
    bootstrap.mmd_interval(real, fake, 3, seed=5)
    g = torch_generator(5, "bootstrap")
    wr, wf = bootstrap.counts(30, 3, g), bootstrap.counts(25, 3, g)  # the same draws, in the same order
    for b in range(3):
        xr = torch.repeat_interleave(real, wr[b].long(), dim=0)
        xf = torch.repeat_interleave(fake, wf[b].long(), dim=0)
        assert seen[0][b] == pytest.approx(_mmd_unbiased(xr, xf), rel=1e-6, abs=1e-9)


def test_rows_carry_a_seeded_interval_around_the_value_and_none_when_turned_off():
    real, fake = _features(120, 12, 5), _features(100, 12, 6, shift=0.4)
    (fid,) = measure("fid", real, fake, seed=3, resamples=30)
    assert fid.interval[0] < fid.value < fid.interval[1]
    assert fid.details["ci_resamples"] == 30 and fid.details["ci_seed"] == 3 and fid.details["ci_level"] == 0.95
    assert measure("fid", real, fake, seed=3, resamples=30)[0].interval == fid.interval
    assert measure("fid", real, fake, seed=4, resamples=30)[0].interval != fid.interval
    (kid,) = measure("kid", real, fake, seed=3, subset_size=50, subsets=10, resamples=30)
    assert kid.interval[0] < kid.interval[1] and "ci_method" in kid.details
    assert measure("fid", real, fake, resamples=0)[0].interval is None
    assert measure("kid", real, fake, subset_size=50, subsets=10, resamples=0)[0].interval is None


def test_the_width_is_the_spread_over_fresh_draws_and_shrinks_with_more_images():
    """A 95% interval spans about 3.9 standard deviations of the number over independent draws."""
    g = torch.Generator().manual_seed(0)
    d = 6
    mix = torch.randn(d, d, generator=g)

    def draw(n, shift):
        return torch.randn(n, d, generator=g) @ mix + shift

    n = 300
    fresh = [measure("fid", draw(n, 0.0), draw(n, 0.3), resamples=0)[0].value for _ in range(25)]
    widths = []
    for seed in range(3):
        low, high = measure("fid", draw(n, 0.0), draw(n, 0.3), seed=seed, resamples=60)[0].interval
        widths.append(high - low)
    spread = 3.92 * float(np.std(fresh, ddof=1))
    assert 0.5 * spread < float(np.mean(widths)) < 2.0 * spread
    low, high = measure("fid", draw(4 * n, 0.0), draw(4 * n, 0.3), resamples=60)[0].interval
    assert high - low < 0.75 * float(np.mean(widths))


def test_names_say_the_sample_budget_and_the_text_shows_the_interval():
    from gankit.eval.rows import budget_name, count_text, value_text

    assert [count_text(n) for n in (500, 2500, 10_000, 50_000, 1_200_000, 1234)] == \
        ["500", "2.5k", "10k", "50k", "1.2M", "1234"]
    assert budget_name("fid", 10_000, 10_000, full=False) == "fid10k"
    assert budget_name("fid", 50_000, 70_000, full=True) == "fid50k_full"
    assert budget_name("kid", 10_000, 5_000, full=False) == "kid10k_r5k"
    assert budget_name("is", 50_000, None, full=False) == "is50k"
    assert budget_name("prdc/recall", 10_000, 10_000, full=False) == "prdc10k/recall"
    assert budget_name("fd_dinov2", 10_000, 10_000, full=True) == "fd_dinov2_10k_full"
    assert value_text({"value": 41.2345, "ci_low": 40.712, "ci_high": 41.804}) == "41.23 [40.71, 41.8]"
    assert value_text({"value": 0.0123, "std": 0.0011, "ci_low": 0.011, "ci_high": 0.0135}) == \
        "0.0123 ± 0.0011 [0.011, 0.0135]"
