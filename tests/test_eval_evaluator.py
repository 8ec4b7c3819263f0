"""The trainer's Evaluator: rows and provenance, its own RNG, the reference cache, refusing or skipping
without weights, and a feature extractor registered by a (test) plugin. Fast: a tiny extractor."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
import torch
from eval_fixtures import TinyExtractor

from gankit.core.errors import GankitError
from gankit.eval import weights
from gankit.eval.cache import ReferenceCache
from gankit.eval.errors import EvalError, WeightsMissingError
from gankit.eval.evaluator import Evaluator
from gankit.eval.extractors import state_sha256
from gankit.core.plugins import get_host, reset_host
from gankit.recipe import validate

NZ = 8
PLUGIN = '''
import gankit
from eval_fixtures import TinyExtractor

@gankit.hookimpl
def gankit_register(registry):
    registry("feature_extractors").register("tiny", TinyExtractor)
'''


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A fresh plugin host, private caches, no weights anywhere and no network."""
    reset_host()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(weights.ENV_OFFLINE, "1")
    monkeypatch.delenv(weights.ENV_PATH, raising=False)
    (tmp_path / "tiny_plugin.py").write_text(PLUGIN)
    yield tmp_path
    reset_host()


def make_recipe(tmp_path, **eval_keys):
    raw = {
        "name": "evaltest",
        "plugins": [str(tmp_path / "tiny_plugin.py")],
        "data": {"name": "digits", "image_size": 16, "channels": 1},
        "generator": {"name": "dcgan", "nz": NZ, "ngf": 8},
        "discriminator": {"name": "dcgan", "ndf": 8},
        "train": {"steps": 1},
        "eval": {"metrics": ["fid", "kid", "prdc", "swd"], "feature_extractor": "tiny", "num_fake": 60,
                 "num_real": 80, "kid_subsets": 5, "every": 10, "batch_size": 32, **eval_keys},
    }
    return validate(raw, "test recipe")


def evaluator(recipe) -> Evaluator:
    from gankit.recipe.build import build_dataset

    return Evaluator(recipe, torch.device("cpu"), lambda: build_dataset(recipe), registry=get_host().registry)


def generate(z: torch.Tensor) -> torch.Tensor:
    """A fixed 'generator': latents -> 1 x 16 x 16 images in [-1, 1]."""
    w = torch.randn(NZ, 256, generator=torch.Generator().manual_seed(5))
    return torch.tanh(z @ w).view(-1, 1, 16, 16)


def test_rows_carry_every_provenance_field(env):
    ev = evaluator(make_recipe(env))
    assert ev.prepare() == ["eval: KID subsets will use 60 images (eval.num_fake) instead of its subset_size 1000"]
    rows = ev.evaluate(generate, NZ, step=10)
    names = [r["metric"] for r in rows]
    assert names == ["fid", "kid", "prdc/precision", "prdc/recall", "prdc/density", "prdc/coverage", "swd"]
    for row in rows:
        for key in ("value", "std", "feature_extractor", "weights_sha256", "input_resolution", "resize",
                    "antialias", "num_real", "num_fake", "reference", "generator", "reference_stats",
                    "cache_file", "step", "gankit_version", "quantisation", "seed", "batch_size", "notes"):
            assert key in row, (row["metric"], key)
        assert row["step"] == 10 and row["generator"] == "raw"
        assert row["num_real"] == 80 and row["num_fake"] == 60
        assert set(row["reference"]) == {"dataset", "root", "split", "transform", "num_images"}
        assert row["reference"]["dataset"] == "digits" and row["reference"]["num_images"] == 1797
        assert np.isfinite(row["value"])
    fid, kid = rows[0], rows[1]
    assert fid["feature_extractor"] == "tiny" and fid["weights_sha256"] == state_sha256(TinyExtractor(1))
    assert fid["reference_stats"] == "computed" and fid["cache_file"].startswith(str(env / "cache"))
    assert kid["std"] is not None and kid["kid_subset_size"] == 60 and kid["kid_subsets"] == 5
    assert "using subsets of 60" in kid["notes"][0]
    assert rows[-1]["feature_extractor"] == "laplacian_pyramid_patches" and rows[-1]["weights_sha256"] is None


def test_evaluation_never_touches_the_global_rng_and_repeats_exactly(env):
    def noisy_generate(z):  # a generator with its own noise layer, drawing from the global RNG
        return (generate(z) + 0.1 * torch.randn(z.shape[0], 1, 16, 16)).clamp(-1, 1)

    ev = evaluator(make_recipe(env))
    ev.prepare()
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    before = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    first = ev.evaluate(noisy_generate, NZ, step=10)
    after = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1]) and before[2] == after[2]
    second = evaluator(make_recipe(env)).evaluate(noisy_generate, NZ, step=20)
    assert [r["value"] for r in first] == [r["value"] for r in second]
    assert [r["std"] for r in first] == [r["std"] for r in second]


def test_a_second_run_makes_zero_real_image_passes(env):
    recipe = make_recipe(env)
    TinyExtractor.calls = 0
    first = evaluator(recipe).evaluate(generate, NZ, step=10)
    assert TinyExtractor.calls == 80 + 60  # reference once, generated once
    again = evaluator(recipe)  # a new run on the same data
    rows = again.evaluate(generate, NZ, step=10)
    assert TinyExtractor.calls == 80 + 60 + 60  # only the generated images
    assert rows[0]["reference_stats"] == "cache" and rows[0]["cache_file"] == first[0]["cache_file"]
    assert [r["value"] for r in rows] == [r["value"] for r in first]
    later = again.evaluate(generate, NZ, step=20)  # later evaluations of a run: the reference stays in memory
    assert TinyExtractor.calls == 80 + 60 * 3 and later[0]["reference_stats"] == "memory"


def test_the_cache_holds_plain_tensors_and_survives_corruption_and_races(env):
    recipe = make_recipe(env, metrics=["fid"])
    path = evaluator(recipe).evaluate(generate, NZ, step=1)[0]["cache_file"]
    entry = torch.load(path, weights_only=True)
    assert entry["features"].shape == (80, 16) and entry["features"].dtype == torch.float32
    (fid_state,) = entry["states"].values()  # torchmetrics FID's reference side, stored as it is
    assert fid_state["real_features_num_samples"] == 80 and fid_state["real_features_cov_sum"].dtype == torch.float64
    with open(path, "wb") as f:
        f.write(b"truncated")
    row = evaluator(recipe).evaluate(generate, NZ, step=1)[0]
    assert row["reference_stats"] == "computed" and "ignored unreadable reference cache" in row["notes"][0]

    cache, key = ReferenceCache(env / "race"), {"reference": {"dataset": "x"}, "num_real": 3}
    writers = [threading.Thread(target=cache.save, args=(key, torch.full((3, 4), float(i)))) for i in range(8)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    entry, note = cache.load(key)
    features = entry["features"]
    assert note is None and features.shape == (3, 4) and len(set(features.flatten().tolist())) == 1
    assert [p.name for p in cache.path(key).parent.iterdir()] == [cache.path(key).name]  # no temp files left


def test_generated_copies_of_the_real_images_score_as_identical(env):
    """Real (dataset floats) and generated (generator floats) images are quantised the same way."""
    recipe = make_recipe(env, metrics=["fid", "prdc"], num_real=10_000, num_fake=1797, batch_size=500)
    ev = evaluator(recipe)
    real = ev.reference().dataset
    served = iter(torch.stack([real[i][0] for i in range(len(real))]).split(500))
    rows = {r["metric"]: r for r in ev.evaluate(lambda z: next(served), NZ, step=1)}
    assert rows["fid"]["value"] == pytest.approx(0, abs=1e-6)
    assert rows["prdc/precision"]["value"] == 1.0 and rows["prdc/recall"]["value"] == 1.0
    assert rows["fid"]["num_real"] == 1797
    assert "eval.num_real 10000 is more than the reference set's 1797 images" in rows["fid"]["notes"][0]


def test_without_weights_refuse_stops_the_run(env):
    recipe = make_recipe(env, metrics=["fid", "is", "swd"], feature_extractor="inception", on_missing_weights="refuse")
    with pytest.raises(WeightsMissingError) as err:
        evaluator(recipe).prepare()
    message = str(err.value)
    assert message.startswith("evaluation (fid, is) needs the Inception weights")
    for expected in (weights.URL, "gankit weights fetch", weights.ENV_PATH, str(weights.cache_path())):
        assert expected in message


def test_without_weights_the_default_trains_and_says_which_metrics_are_skipped(env):
    recipe = make_recipe(env, metrics=["fid", "is", "swd"], feature_extractor="inception")  # skip: the default
    ev = evaluator(recipe)
    notices = ev.prepare()
    assert len(notices) == 1
    assert notices[0].startswith("eval: skipping fid, is: no Inception weights on this machine: $GANKIT_OFFLINE")
    assert notices[0].endswith("; measuring swd")
    assert set(ev.skipped) == {"fid", "is"} and ev.metrics == ["swd"]
    rows = ev.evaluate(generate, NZ, step=10)
    assert [r["metric"] for r in rows] == ["swd"] and rows[0]["value"] > 0


def test_a_diverged_generator_is_a_clear_error(env):
    ev = evaluator(make_recipe(env, metrics=["fid"]))
    with pytest.raises(EvalError, match="NaN or infinite"):
        ev.evaluate(lambda z: torch.full((z.shape[0], 1, 16, 16), float("nan")), NZ, step=1)


def test_an_unknown_feature_extractor_is_named_with_a_suggestion(env):
    with pytest.raises(GankitError, match="eval.feature_extractor: 'tinny' is not a registered feature_extractor; "
                                          "did you mean 'tiny'"):
        evaluator(make_recipe(env, feature_extractor="tinny")).prepare()


def test_due_follows_eval_every(env):
    ev = evaluator(make_recipe(env))
    assert [s for s in range(0, 35) if ev.due(s)] == [10, 20, 30]
    assert not evaluator(make_recipe(env, every=None)).due(10)


def test_gankit_eval_checkpoint_measures_the_runs_generator(env, capsys):
    import json

    from gankit.cli import main
    from gankit.training.trainer import train

    raw = make_recipe(env, metrics=["swd"]).model_dump(mode="json", exclude={"gankit"})
    raw.update(out_dir=str(env / "runs"), device="cpu")
    raw["train"].update(steps=1, sample_every=None, checkpoint_every=None)
    raw["data"]["batch_size"] = 16
    raw["log"] = {"progress": "none", "wandb": {"mode": "disabled"}}
    run_dir = train(validate(raw, "one-step run"))
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--metrics", "fid,swd", "--num-fake", "40", "--json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["values"]) == {"fid", "swd"}
    for row in out["rows"]:
        # best.pt: the run kept the best of the first metric it measured (swd), and gankit eval prefers it
        assert row["step"] == 1 and row["num_fake"] == 40 and row["checkpoint"].endswith("best.pt")
        assert row["generator"] == "raw" and row["reference"]["dataset"] == "digits"
    assert out["rows"][0]["feature_extractor"] == "tiny"  # the run's recipe chose it; its plugin is loaded
    assert main(["eval", str(run_dir), "--metrics", "fid"]) == 0  # the text table
    assert capsys.readouterr().out.startswith("fid60_r80 ")  # named with its budget (eval.num_fake: 60)


def test_gankit_eval_usage_mistakes_are_clear(env, capsys):
    from gankit.cli import main

    assert main(["eval"]) == 2
    assert "give both --real DIR and --fake DIR" in capsys.readouterr().err
    assert main(["eval", "--real", str(env), "--fake", str(env), "--metrics", "fdi"]) == 2
    assert "has no png/jpg/jpeg images" in capsys.readouterr().err  # the folders are checked before the metrics
    (env / "imgs").mkdir()
    from eval_fixtures import digits_uint8, write_folder

    write_folder(env / "imgs", digits_uint8(3, size=16))
    assert main(["eval", "--real", str(env / "imgs"), "--fake", str(env / "imgs"), "--metrics", "fdi"]) == 2
    assert "--metrics: 'fdi' is not a registered metric; did you mean 'fid'?" in capsys.readouterr().err
    assert main(["eval", "--real", str(env / "imgs"), "--fake", str(env / "imgs"), "--kid-subsets", "0"]) == 2
    assert "--kid-subsets: Input should be greater than 0" in capsys.readouterr().err


def test_an_unusable_named_weights_file_refuses_or_skips(env):
    garbage = env / "not-weights.pth"
    garbage.write_bytes(b"not a torch file")
    recipe = make_recipe(env, metrics=["fid", "swd"], feature_extractor="inception", inception_weights=str(garbage),
                         on_missing_weights="refuse")
    with pytest.raises(GankitError, match="cannot be read as a state dict"):
        evaluator(recipe).prepare()
    skipping = evaluator(make_recipe(env, metrics=["fid", "swd"], feature_extractor="inception",
                                     inception_weights=str(garbage), on_missing_weights="skip"))
    notices = skipping.prepare()
    assert any("skipping fid" in n and "cannot be read" in n for n in notices)
    assert skipping.metrics == ["swd"]
    other = env / "other-network.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(GankitError, match="does not fit torch-fidelity's InceptionV3"):
        evaluator(make_recipe(env, metrics=["fid"], feature_extractor="inception", on_missing_weights="refuse",
                              inception_weights=str(other))).prepare()
