"""The statistics of gankit.eval against torchmetrics and torch-fidelity, on given features (no network)."""

from __future__ import annotations

import pytest
import torch

import gankit
from gankit.eval import prdc, swd
from gankit.eval.metrics import check_finite
from gankit.eval.errors import EvalError
from gankit.eval.images import quantise


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) / d**0.5
    return (torch.randn(n, d, generator=g) @ mix + shift).relu()  # correlated, non-negative like pool features


def measure(name: str, real: torch.Tensor | None, fake: torch.Tensor, seed: int = 0, batch: int = 16, **args):
    """The registered metric ``name`` fed ``real`` and ``fake`` features batch by batch, as an evaluation does."""
    metric = gankit.registry("metrics").build(name, **args)
    metric.name = name
    for side, x in (("real", real), ("fake", fake)):
        for chunk in ([] if x is None else x.split(batch)):
            metric.update(chunk, real=side == "real")
    return metric.compute(seed)


@pytest.mark.parametrize("n_real,n_fake,d", [(30, 40, 64), (200, 150, 32)])  # fewer / more samples than dims
def test_fid_is_torchmetrics_and_agrees_with_torch_fidelity(n_real, n_fake, d):
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    real, fake = _features(n_real, d, 0), _features(n_fake, d, 1, shift=0.3)
    (value,) = measure("fid", real, fake)
    tf = fid_statistics_to_metric(fid_features_to_statistics(real.double()),
                                  fid_features_to_statistics(fake.double()), verbose=False)
    assert value.value == pytest.approx(tf["frechet_inception_distance"], rel=1e-5)
    assert value.details["implementation"].startswith("torchmetrics ") and \
        value.details["implementation"].endswith(" FrechetInceptionDistance")


def test_fid_of_a_set_with_itself_is_zero_and_needs_two_samples():
    x = _features(50, 16, 3)
    (value,) = measure("fid", x, x.clone())
    assert value.value == pytest.approx(0, abs=1e-6)
    with pytest.raises(EvalError, match="at least 2 generated"):
        measure("fid", x, x[:1])


def test_a_non_finite_result_is_refused():
    x = _features(10, 8, 4)
    bad = x.clone()
    bad[0, 0] = float("inf")
    (value,) = measure("fid", x, bad)
    with pytest.raises(EvalError, match="not logging a meaningless number"):
        check_finite(value)


def test_kid_is_torchmetrics_and_matches_torch_fidelity_with_one_subset_of_everything():
    from torch_fidelity.metric_kid import kid_features_to_metric

    real, fake = _features(40, 32, 5), _features(40, 32, 6, shift=0.2)
    (value,) = measure("kid", real, fake, subsets=1, subset_size=40)
    tf = kid_features_to_metric(real.double(), fake.double(), kid_subsets=1, kid_subset_size=40, verbose=False)
    assert value.value == pytest.approx(tf["kernel_inception_distance_mean"], rel=1e-9)
    assert value.std == 0.0 and "KernelInceptionDistance" in value.details["implementation"]


def test_kid_subsets_come_from_the_evaluation_seed_only():
    real, fake = _features(60, 16, 7), _features(60, 16, 8, shift=0.2)
    before = torch.get_rng_state()
    a = measure("kid", real, fake, seed=1, subsets=10, subset_size=20)[0]
    b = measure("kid", real, fake, seed=1, subsets=10, subset_size=20)[0]
    c = measure("kid", real, fake, seed=2, subsets=10, subset_size=20)[0]
    assert (a.value, a.std) == (b.value, b.std) and a.std > 0 and c.value != a.value
    assert torch.equal(torch.get_rng_state(), before)


def test_kid_adapts_its_subsets_to_a_small_evaluation_and_says_so():
    (value,) = measure("kid", _features(12, 8, 1), _features(10, 8, 2))
    assert value.details["kid_subset_size"] == 10 and "using subsets of 10" in value.details["note"]


def test_inception_score_is_torchmetrics_and_matches_torch_fidelity_with_one_split():
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = torch.randn(50, 1008, generator=torch.Generator().manual_seed(9)) * 4
    (value,) = measure("is", None, logits, splits=1)
    tf = isc_features_to_metric(logits, splits=1, shuffle=False)
    assert value.value == pytest.approx(tf["inception_score_mean"], rel=1e-9)
    assert value.std is None  # one split: no spread to report
    assert "InceptionScore" in value.details["implementation"]


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
    assert prdc.prdc(real, fake, k=5, chunk=16) == pytest.approx(expected, abs=1e-12)
    same = prdc.prdc(real, real.clone(), k=5)
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
