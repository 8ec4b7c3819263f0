"""The 95% bootstrap interval on FID, KID and FD rows (gankit.eval.bootstrap), on given features: its algebra
against direct computations, its seed, and that its width is the spread of the number over fresh draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_eval_stats import _features, measure

from gankit.eval import bootstrap
from gankit.eval.rng import torch_generator


def test_frechet_is_torchmetrics_fid_with_more_and_fewer_samples_than_dimensions():
    for n, d in ((300, 16), (20, 32)):
        real, fake = _features(n, d, 0), _features(n + 7, d, 1, shift=0.2)
        (fid,) = measure("fid", real, fake, resamples=0)
        mu_r, s_r = bootstrap._moments(real, torch.ones(n, dtype=torch.float64))
        mu_f, s_f = bootstrap._moments(fake, torch.ones(n + 7, dtype=torch.float64))
        assert bootstrap.frechet(mu_r, s_r, mu_f, s_f) == pytest.approx(fid.value, rel=1e-5)


def test_weighted_moments_are_those_of_the_explicit_resample():
    x = _features(40, 8, 2)
    g = torch_generator(0, "test")
    w = bootstrap.counts(40, 1, g)[0]
    explicit = torch.repeat_interleave(x, w.long(), dim=0).double()
    mean, cov = bootstrap._moments(x, w)
    assert torch.allclose(mean, explicit.mean(0), atol=1e-10)
    assert torch.allclose(cov, torch.cov(explicit.T), atol=1e-5)


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
