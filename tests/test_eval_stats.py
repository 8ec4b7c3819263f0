"""The statistics of gankit.eval against torchmetrics and torch-fidelity, on given features (no network)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gankit.eval import stats, swd
from gankit.eval.errors import EvalError
from gankit.eval.images import quantise


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) / d**0.5
    return (torch.randn(n, d, generator=g) @ mix + shift).relu()  # correlated, non-negative like pool features


class _Given(nn.Module):
    """A 'feature extractor' for torchmetrics that returns what it is given: features computed elsewhere."""

    def __init__(self, d: int):
        super().__init__()
        self.num_features = d

    def forward(self, x):
        return x


@pytest.mark.parametrize("n_real,n_fake,d", [(30, 40, 64), (200, 150, 32)])  # fewer / more samples than dims
def test_fid_matches_torchmetrics_and_torch_fidelity(n_real, n_fake, d):
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = _features(n_real, d, 0), _features(n_fake, d, 1, shift=0.3)
    ours = stats.frechet_distance(stats.FeatureStats(real), stats.FeatureStats(fake))

    tm = FrechetInceptionDistance(feature=_Given(d)).set_dtype(torch.float64)
    tm.update(real.double(), real=True)
    tm.update(fake.double(), real=False)
    tf = fid_statistics_to_metric(fid_features_to_statistics(real.double()),
                                  fid_features_to_statistics(fake.double()), verbose=False)
    assert ours == pytest.approx(float(tm.compute()), rel=1e-6)
    assert ours == pytest.approx(tf["frechet_inception_distance"], rel=1e-6)


def test_fid_of_a_set_with_itself_is_zero_and_needs_two_samples():
    x = _features(50, 16, 3)
    assert stats.frechet_distance(stats.FeatureStats(x), stats.FeatureStats(x.clone())) == pytest.approx(0, abs=1e-8)
    with pytest.raises(EvalError, match="at least 2 generated"):
        stats.frechet_distance(stats.FeatureStats(x), stats.FeatureStats(x[:1]))


def test_fid_refuses_a_non_finite_result():
    x = _features(10, 8, 4)
    bad = x.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(EvalError, match="non-finite"):
        stats.frechet_distance(stats.FeatureStats(x), stats.FeatureStats(bad))


def test_kid_matches_torch_fidelity_with_one_subset_of_everything():
    from torch_fidelity.metric_kid import kid_features_to_metric

    real, fake = _features(40, 32, 5), _features(40, 32, 6, shift=0.2)
    ours, std = stats.kid(real, fake, subsets=1, subset_size=40, rng=np.random.default_rng(0))
    tf = kid_features_to_metric(real.double(), fake.double(), kid_subsets=1, kid_subset_size=40, verbose=False)
    assert ours == pytest.approx(tf["kernel_inception_distance_mean"], rel=1e-9)
    assert std == 0.0


def test_kid_subsets_come_from_the_given_generator_only():
    real, fake = _features(60, 16, 7), _features(60, 16, 8, shift=0.2)
    before = torch.get_rng_state()
    a = stats.kid(real, fake, 10, 20, np.random.default_rng(1))
    b = stats.kid(real, fake, 10, 20, np.random.default_rng(1))
    assert a == b and a[1] > 0
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.filterwarnings("ignore:std\\(\\)")  # torchmetrics' std of one split
def test_inception_score_matches_torch_fidelity_and_torchmetrics_with_one_split():
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torchmetrics.image.inception import InceptionScore

    logits = torch.randn(50, 1008, generator=torch.Generator().manual_seed(9)) * 4
    ours, std = stats.inception_score(logits, 1, torch.Generator().manual_seed(0))
    tf = isc_features_to_metric(logits, splits=1, shuffle=False)
    with pytest.warns(UserWarning):
        tm = InceptionScore(feature=_Given(1008), splits=1)
    tm.update(logits.double())
    assert ours == pytest.approx(tf["inception_score_mean"], rel=1e-12)
    assert ours == pytest.approx(float(tm.compute()[0]), rel=1e-9)
    assert std == 0.0


def _prdc_reference(real, fake, k):
    """Naeem et al.'s definitions, written out with full distance matrices."""
    d_rr, d_ff, d_rf = torch.cdist(real, real), torch.cdist(fake, fake), torch.cdist(real, fake)
    r_real = d_rr.sort(dim=1).values[:, k]
    r_fake = d_ff.sort(dim=1).values[:, k]
    inside = d_rf < r_real[:, None]
    return {
        "precision": inside.any(dim=0).double().mean().item(),
        "recall": (d_rf < r_fake[None, :]).any(dim=1).double().mean().item(),
        "density": inside.sum(dim=0).double().mean().item() / k,
        "coverage": (d_rf.min(dim=1).values < r_real).double().mean().item(),
    }


def test_prdc_matches_the_definitions_also_when_chunked():
    real, fake = _features(70, 8, 10).double(), _features(50, 8, 11, shift=0.1).double()
    expected = _prdc_reference(real, fake, 5)
    assert stats.prdc(real, fake, k=5, chunk=16) == pytest.approx(expected, abs=1e-12)
    same = stats.prdc(real, real.clone(), k=5)
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0


def test_swd_is_small_for_the_same_distribution_and_large_for_another():
    g = torch.Generator().manual_seed(0)
    smooth = lambda n: torch.nn.functional.interpolate(  # noqa: E731
        torch.rand(n, 3, 8, 8, generator=g) * 255, size=32, mode="bilinear").round().to(torch.uint8)
    noise = lambda n: torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)  # noqa: E731

    def descriptors(images, stream):
        d = swd.Descriptors(images.shape[0], torch.Generator().manual_seed(stream))
        d.add(images)
        return d.finish()

    a, b, c = descriptors(smooth(64), 1), descriptors(smooth(64), 2), descriptors(noise(64), 3)
    assert len(a) == len(swd.resolutions(32)) == 2  # 32 and 16
    near = swd.swd(a, b, torch.Generator().manual_seed(0))[0]
    far = swd.swd(a, c, torch.Generator().manual_seed(0))[0]
    assert 0 <= near < far / 2  # ~30 is the sampling noise of 64 images x 128 patches


def test_laplacian_pyramid_reconstructs_the_image():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    pyramid = swd.laplacian_pyramid(x, 3)
    rebuilt = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        rebuilt = band + swd._up(rebuilt)
    assert torch.allclose(rebuilt, x, atol=1e-5)


def test_quantisation_rounds_real_and_generated_images_the_same_way():
    x = torch.tensor([-1.0, -0.996, -0.0039, 0.0, 0.0039216, 1.0, 1.7, -3.0])
    # (x + 1) * 127.5 = 0, 0.51, 127.0, 127.5, 128.0, 255, 344, -255
    assert quantise(x).tolist() == [0, 1, 127, 128, 128, 255, 255, 0]  # 127.5 rounds half to even
    u = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(quantise(u.float() / 127.5 - 1), u)  # what a dataset gives back -> the file's bytes
    assert quantise(u) is u
    with pytest.raises(EvalError, match="NaN"):
        quantise(torch.tensor([0.0, float("nan")]))
