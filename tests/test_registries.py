"""Every registered metric, augmentation, schedule and feature extractor, tested through its registry.

A component a plugin registers is picked up here without anyone writing a
test (generators, discriminators and losses: tests/test_components.py;
regularisers: tests/test_regularizers.py; datasets: tests/test_datasets.py).
Each test checks what the trainer and the evaluator rely on, by behaviour:
a metric's declared direction is the one in which a better generator moves
it; an augmentation is differentiable and draws only from the generator it
is given; a schedule is a function of the images seen, so a resumed run sets
the same values.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch

import gankit
from gankit import contracts
from gankit.core.plugins import get_host
from gankit.core.registry import accepts, signature_of
from gankit.eval.metrics import Metric
from gankit.rundir.metrics import higher_is_better

METRICS = get_host().registry("metrics").list()
AUGMENTATIONS = get_host().registry("augmentations").list()
SCHEDULES = get_host().registry("schedules").list()
# An extractor that needs a weights file (Inception) is tested with a generated one: seconds to make, slow tier.
EXTRACTORS = [pytest.param(n, marks=pytest.mark.slow) if accepts(get_host().registry("feature_extractors").get(n), "weights")
              else n for n in get_host().registry("feature_extractors").list()]
# The metrics gankit had before eval rows recorded their direction: records of that time are read by name.
EARLIER = ("fid", "is", "kid", "prdc", "swd")


# -- metrics ---------------------------------------------------------------------------------
def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def inputs(uses: str, quality: str, n: int = 96) -> torch.Tensor:
    """A batch of what a metric reads: reference ("real"), a good generator's, a bad generator's."""
    seed = {"real": 0, "good": 1, "bad": 2}[quality]
    if uses == "features":  # good: the reference's distribution; bad: shifted and squeezed
        x = torch.randn(n, 16, generator=_gen(seed))
        return x * 0.3 + 2.0 if quality == "bad" else x
    if uses == "logits":  # good: confident and spread over the classes; bad: the same vague guess for all
        if quality == "bad":
            return torch.randn(n, 10, generator=_gen(seed)) * 0.01
        return torch.nn.functional.one_hot(torch.arange(n) % 10, 10).float() * 8
    # images: good: smooth blobs like the reference's; bad: uniform noise
    if quality == "bad":
        return torch.randint(0, 256, (n, 3, 32, 32), generator=_gen(seed), dtype=torch.uint8)
    blobs = torch.nn.functional.interpolate(torch.rand(n, 3, 4, 4, generator=_gen(seed)), size=32, mode="bilinear")
    return (blobs * 255).round().to(torch.uint8)


def classes_of(metric: Metric, n: int = 96) -> dict[str, torch.Tensor]:
    """The images' classes for a metric that reads them (per-class FID): two classes, alternating."""
    return {"labels": torch.arange(n) % 2} if metric.needs_labels else {}


def measure(name: str, quality: str, metric: Metric | None = None) -> dict[str, float]:
    metric = metric or gankit.registry("metrics").build(name)
    metric.name = name
    if metric.reads_real:
        metric.update(inputs(metric.uses, "real"), real=True, **classes_of(metric))
    metric.update(inputs(metric.uses, quality), real=False, **classes_of(metric))
    values = metric.compute(seed=0)
    metric.reset_fake()
    return {v.metric: v.value for v in values}


@pytest.mark.parametrize("name", METRICS)
def test_metric_declares_itself_and_gives_named_finite_values(name):
    cls = gankit.registry("metrics").get(name)
    assert isinstance(cls, type) and issubclass(cls, Metric)
    assert cls.uses in ("features", "logits", "images") and isinstance(cls.higher_is_better, bool)
    metric = gankit.registry("metrics").build(name)
    provenance = metric.provenance()
    assert isinstance(provenance, dict) and all(isinstance(k, str) for k in provenance)
    values = measure(name, "good", metric)
    assert values and all(v == name or v.startswith(name + "/") for v in values), values
    assert all(math.isfinite(v) for v in values.values()), values


@pytest.mark.parametrize("name", METRICS)
def test_a_better_generator_scores_better_in_the_direction_the_metric_declares(name):
    good, bad = measure(name, "good"), measure(name, "bad")
    higher = gankit.registry("metrics").get(name).higher_is_better
    for value in good:
        assert (good[value] > bad[value]) == higher, (value, good[value], bad[value], f"higher_is_better={higher}")


@pytest.mark.parametrize("name", METRICS)
def test_the_reference_side_survives_the_cache(name):
    """real_state() -> load_real_state(): the same numbers without the reference images."""
    first = gankit.registry("metrics").build(name)
    expected = measure(name, "good", first)
    state = first.real_state()
    if state is None:
        pytest.skip(f"{name} rebuilds its reference side (no real_state)")
    again = gankit.registry("metrics").build(name)
    again.name = name
    again.load_real_state(state)
    again.update(inputs(again.uses, "good"), real=False, **classes_of(again))
    assert {v.metric: v.value for v in again.compute(seed=0)} == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("name", [m for m in EARLIER if m in METRICS])
def test_records_without_a_direction_read_the_earlier_metrics_as_their_classes_say(name):
    higher = gankit.registry("metrics").get(name).higher_is_better
    for value in measure(name, "good"):
        assert higher_is_better(value) == higher, value  # no rows: the fallback for records written before
        assert higher_is_better(value, [{"metric": value, "higher_is_better": not higher}]) == (not higher)


# -- augmentations ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_augmentation_is_differentiable_reproducible_and_leaves_the_global_stream_alone(name):
    aug = gankit.registry("augmentations").build(name)
    assert isinstance(aug, contracts.Augmentation)
    if isinstance(aug, contracts.HasProbability):
        aug.p = 0.5  # exercise the transforms (ADA starts at p = 0)
    x = (torch.rand(6, 3, 32, 32, generator=_gen(3)) * 2 - 1).requires_grad_(True)
    before = torch.get_rng_state()
    a = aug(x, generator=_gen(7))
    assert torch.equal(torch.get_rng_state(), before), "drew from the global stream"
    assert a.shape == x.shape and a.dtype == x.dtype and torch.isfinite(a).all()
    assert torch.equal(aug(x, generator=_gen(7)), a), "the same generator state must give the same transforms"
    a.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_augmentation_state_and_adaptation_round_trip(name, tmp_path):
    aug = gankit.registry("augmentations").build(name)
    if isinstance(aug, contracts.Adaptive):
        for _ in range(8):  # D sure of the real images: an adaptive augmentation strengthens
            aug.observe({"real_sign": torch.tensor(1.0)}, 64)
            aug.iteration_done(64)  # where p moves, after the iteration (StyleGAN2-ADA's loop)
        assert aug.p > 0, f"{name}: p did not rise while D was sure of every real image"
    if not isinstance(aug, contracts.Stateful):
        pytest.skip(f"{name} keeps no state across a resume")
    torch.save(aug.state_dict(), tmp_path / "state.pt")
    fresh = gankit.registry("augmentations").build(name)
    fresh.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))  # what a checkpoint allows
    assert fresh.state_dict() == aug.state_dict()
    if isinstance(aug, contracts.HasProbability):
        assert fresh.p == aug.p


# -- schedules -------------------------------------------------------------------------------
def build_schedule(name: str):
    """The schedule with each required argument (a value, a length in images) set to 1000."""
    sig = signature_of(gankit.registry("schedules").get(name))
    required = {p for p, param in sig.parameters.items() if param.default is inspect.Parameter.empty
                and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)}
    return gankit.registry("schedules").build(name, **{p: 1000.0 for p in required})


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedule_is_a_function_of_the_images_seen(name):
    """Its value at n images is the same whenever it is asked, so a resumed run sets the same values."""
    points = [0, 1, 10, 250, 999, 1000, 5000, 10**7]
    in_order = [float(build_schedule(name)(n)) for n in points]
    shuffled = build_schedule(name)
    out_of_order = {n: float(shuffled(n)) for n in reversed(points)}
    assert isinstance(build_schedule(name), contracts.Schedule)
    assert all(math.isfinite(v) for v in in_order)
    assert in_order == [out_of_order[n] for n in points]


# -- feature extractors ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def stand_in_weights(tmp_path_factory):
    """A weights file for each extractor that asks for one (Inception, DINOv2): generated, never the published."""
    from eval_fixtures import make_dinov2_weights, make_inception_weights
    from gankit.eval.weights import WeightsFile, sha256_of

    def made(name: str) -> WeightsFile:
        folder = tmp_path_factory.mktemp("weights")
        path = (make_dinov2_weights(folder / "model.safetensors") if name == "dinov2_vitl14"
                else make_inception_weights(folder / "inception-test.pth"))
        return WeightsFile(path, sha256_of(path), "test")

    return made


@pytest.mark.parametrize("name", EXTRACTORS)
def test_feature_extractor_gives_one_finite_deterministic_vector_per_image(name, request):
    from gankit.eval.extractors import build_extractor

    reg = gankit.registry("feature_extractors")
    weights = request.getfixturevalue("stand_in_weights")(name) if accepts(reg.get(name), "weights") else None
    extractor = build_extractor(reg, name, torch.device("cpu"), channels=3, image_size=32, weights=weights)
    images = inputs("images", "good", n=3)
    out = extractor.extract(images)
    features = out["features"]
    assert features.shape[0] == 3 and features.dim() == 2 and features.dtype == torch.float32
    assert torch.isfinite(features).all() and not torch.equal(features[0], features[1])
    assert torch.equal(extractor.extract(images)["features"], features)
    alone = extractor.extract(images[:1])["features"][0]
    assert torch.allclose(alone, features[0], rtol=1e-4, atol=1e-5), "an image's features depend on it alone"
    provenance = extractor.provenance()
    assert provenance["feature_extractor"] == name and provenance["weights_sha256"]
