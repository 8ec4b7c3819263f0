"""Per-class FID (fid_per_class): a conditional generator that ignores its label is caught; the features are fid's
(one pass); a conditional run's evaluation records every class. Fast: pixel features, digits."""

from __future__ import annotations

import json

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

import gankit
from gankit.core.plugins import get_host
from gankit.eval.engine import Engine, FolderImages, GeneratedImages, Reference
from gankit.eval.errors import EvalError
from gankit.recipe.schema import EvalSection

PLUGIN = '''
import gankit
from test_eval_per_class import Pixels

@gankit.hookimpl
def gankit_register(registry):
    registry("feature_extractors").register("pixels", Pixels)
'''


class Pixels(nn.Module):
    """A feature extractor that tells digits apart: the image averaged down to 8 x 8 grey pixels (64 features)."""

    calls = 0

    def forward(self, x):
        Pixels.calls += x.shape[0]
        return nn.functional.adaptive_avg_pool2d(x.float().mean(1, keepdim=True) / 255, 8).flatten(1)


def digits():
    """(images in [-1, 1] of shape (N, 1, 8, 8), labels): scikit-learn's 1,797 handwritten digits."""
    d = load_digits()
    return torch.tensor(d.images / 8.0 - 1.0, dtype=torch.float32)[:, None], torch.tensor(d.target)


class Labelled(torch.utils.data.Dataset):
    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])


def bank_generator(images, labels, respects_label: bool):
    """A 'conditional generator' drawing real digits (seeded by z): of the asked class, or of any class."""
    by_class = [images[labels == c] for c in range(10)]

    def generate(z, labels_asked):
        pick = (z[:, 0].abs() * 1e4).long()
        if respects_label:
            out = [by_class[int(c)][int(p) % len(by_class[int(c)])] for c, p in zip(labels_asked, pick)]
        else:
            out = [images[int(p) % len(images)] for p in pick]
        return torch.stack(out)

    return generate


@pytest.fixture
def engine():
    get_host().registry("feature_extractors").register("pixels", Pixels)

    def make(**keys):
        cfg = EvalSection.model_validate({"metrics": ["fid", "fid_per_class"], "feature_extractor": "pixels",
                                          "num_fake": 600, "num_real": 1797, "batch_size": 100,
                                          "bootstrap_resamples": 0, "cache_dir": None, **keys})
        e = Engine(cfg, torch.device("cpu"), channels=1, image_size=8, registry=get_host().registry)
        e.prepare()
        return e

    return make


def measure(engine, respects_label: bool) -> dict[str, dict]:
    images, labels = digits()
    ref = Reference(Labelled(images, labels), {"dataset": "digits", "num_images": len(images)})
    gen = bank_generator(images, labels, respects_label)
    rows = engine.measure(ref, GeneratedImages(gen, 4, engine.cfg.num_fake, 0, torch.device("cpu"), classes=10), 1)
    return {row["metric"]: row for row in rows}


def test_a_generator_that_ignores_its_label_has_a_worse_per_class_fid_than_its_fid(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))
    e = engine()
    Pixels.calls = 0
    ignoring = measure(e, respects_label=False)
    assert Pixels.calls == 1797 + 600  # fid and fid_per_class share one pass over each image
    respecting = measure(e, respects_label=True)
    # Overall, both draw real digits: good FIDs. Within each class only the one that listens is good.
    assert ignoring["fid_per_class"]["value"] > 3 * ignoring["fid"]["value"]
    assert ignoring["fid_per_class"]["value"] > 3 * respecting["fid_per_class"]["value"]
    row = ignoring["fid_per_class"]
    assert sorted(row["per_class"]) == [str(c) for c in range(10)] and row["classes_measured"] == 10
    assert row["value"] == pytest.approx(sum(row["per_class"].values()) / 10)
    worst = ignoring["fid_per_class/worst"]
    assert worst["value"] == max(row["per_class"].values()) and str(worst["class"]) == str(row["worst_class"])
    assert row["images_per_class"]["3"] == [183, 60]  # scikit-learn's 183 threes; 600 generated in turn
    assert row["budget_name"] == "fid_per_class600_full" and ignoring["fid"]["budget_name"] == "fid600_full"


def test_per_class_needs_classes_on_both_sides(engine, tmp_path, monkeypatch):
    from eval_fixtures import write_folder

    from gankit.eval.images import ImageFolder

    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))
    e = engine(num_fake=20, num_real=20)
    folder = ImageFolder(write_folder(tmp_path / "f", torch.zeros(4, 3, 8, 8, dtype=torch.uint8)))
    images, labels = digits()
    ref = Reference(Labelled(images, labels), {"dataset": "digits", "num_images": len(images)})
    with pytest.raises(EvalError, match="fid_per_class needs the classes of the generated images"):
        e.measure(ref, FolderImages(folder, None, 0), None)
    unlabelled = Reference(Labelled(images, torch.full_like(labels, -1)), {"dataset": "x", "num_images": 1797})
    gen = bank_generator(images, labels, True)
    with pytest.raises(EvalError, match="needs class labels, but the reference set x has none"):
        e.measure(unlabelled, GeneratedImages(gen, 4, 20, 0, torch.device("cpu"), classes=10), None)


def test_a_conditional_run_records_every_class(tiny, write_recipe, tmp_path, monkeypatch):
    from helpers import run_cli

    (tmp_path / "pixels_plugin.py").write_text(PLUGIN)
    tiny.update({"plugins": [str(tmp_path / "pixels_plugin.py")]})
    tiny["data"].update({"image_size": 16})
    tiny["generator"] = {"name": "dcgan_cond", "nz": 8, "ngf": 8, "num_classes": 10}
    tiny["discriminator"] = {"name": "dcgan_projection", "ndf": 8, "num_classes": 10}
    tiny["eval"] = {"metrics": ["fid", "fid_per_class"], "feature_extractor": "pixels", "num_fake": 100,
                    "num_real": 300, "bootstrap_resamples": 10}
    path = write_recipe(tiny)
    done = run_cli("run", str(path), env={"PYTHONPATH": f"{tmp_path}:{gankit.__path__[0]}/../tests",
                                          "GANKIT_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    run_dir = next((tmp_path / "runs" / "tiny").iterdir())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    per_class = [r for r in rows if r.get("metric") == "fid_per_class"][-1]
    assert sorted(per_class["per_class"], key=int) == [str(c) for c in range(10)] and per_class["classes"] == 10
    assert per_class["ci_low"] < per_class["ci_high"] and per_class["ci_resamples"] == 10
    fid = [r for r in rows if r.get("metric") == "fid"][-1]
    assert fid["ci_low"] < fid["value"] < fid["ci_high"] and fid["budget_name"] == "fid100_r300"
    assert "fid100_r300 = " in done.stderr + done.stdout and "fid_per_class100_r300 = " in done.stderr + done.stdout


def test_an_unconditional_generator_is_refused_at_the_start():
    get_host().registry("feature_extractors").register("pixels", Pixels)
    cfg = EvalSection.model_validate({"metrics": ["fid", "fid_per_class"], "feature_extractor": "pixels"})
    engine = Engine(cfg, torch.device("cpu"), channels=1, image_size=8, registry=get_host().registry)
    with pytest.raises(EvalError, match="fid_per_class measures each class, but the generator is not class-cond"):
        engine.prepare(conditional=False)
