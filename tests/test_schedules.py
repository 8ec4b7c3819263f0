"""The ``schedules`` registry: R3GAN's cosine schedule against the authors' values, EMA in images, the others."""

from __future__ import annotations

import pytest
import torch

import gankit
from gankit.training.ema import EMA
from goldens import load_golden


def test_cosine_reproduces_the_authors_cifar10_schedules():
    golden = load_golden("r3gan_official.pt")["schedules_CIFAR10"]  # ../shared/parity: fails under CI when missing
    for name, kwargs in golden["kwargs"].items():
        schedule = gankit.registry("schedules").build("cosine", **kwargs)
        for n, expected in zip(golden["nimg"], golden["values"][name]):
            assert schedule(n) == pytest.approx(expected, rel=1e-12, abs=1e-12), (name, n)
    # The EMA's beta at batch 512 for the scheduled half-life (R3GAN: no ramp-up).
    ema_length = gankit.registry("schedules").build("cosine", **golden["kwargs"]["ema_nimg"])
    ema = EMA(torch.nn.Linear(1, 1), rampup=None, half_life_kimg=0)
    for n, expected in zip(golden["nimg"], golden["ema_beta_at_batch_512"]):
        ema.half_life_images = ema_length(n)
        assert ema.beta(512) == pytest.approx(expected, rel=1e-12, abs=1e-12), n


def test_warmup_and_hold():
    s = gankit.registry("schedules").build("cosine", base_value=1.0, final_value=0.0, total_nimg=100,
                                           warmup_value=0.5, warmup_nimg=10, hold_nimg=20)
    assert s(0) == 0.5 and s(5) == pytest.approx(0.75) and s(10) == 1.0 and s(30) == 1.0
    assert s(65) == pytest.approx(0.5) and s(100) == pytest.approx(0.0) and s(1000) == 0.0


def test_linear_and_constant():
    line = gankit.registry("schedules").build("linear", base_value=2e-4, final_value=0.0, total_nimg=1000)
    assert line(0) == 2e-4 and line(500) == pytest.approx(1e-4) and line(2000) == 0.0
    assert gankit.registry("schedules").build("constant", value=3.0)(12345) == 3.0
    with pytest.raises(gankit.core.errors.GankitError, match="total_nimg must be above"):
        gankit.registry("schedules").build("linear", base_value=1.0, total_nimg=0)


def test_ema_by_half_life_in_images_follows_stylegan2_ada():
    """β = ½^(batch / min(ema_kimg · 1000, rampup · images seen)), StyleGAN2-ADA's training_loop."""
    ema = EMA(torch.nn.Linear(1, 1), rampup=0.05, half_life_kimg=500)
    ema.images_seen = 64_000
    assert ema.beta(64) == pytest.approx(0.5 ** (64 / min(500_000, 0.05 * 64_000)))
    ema.images_seen = 10**9
    assert ema.beta(64) == pytest.approx(0.5 ** (64 / 500_000))
