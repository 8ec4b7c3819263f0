"""FID, KID and IS from `gankit eval` equal torch-fidelity's calculate_metrics on the same folders and
weights file. The weights are a stand-in written by the test (the real layout, generated values);
Inception on the CPU costs ~0.4 s per image here, so the expensive parts are shared by the module."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json

import pytest
from eval_fixtures import digits_uint8, make_inception_weights, noisy, write_folder

from gankit.cli import main
from gankit.eval import extractors

pytestmark = pytest.mark.slow  # the slow tier: a generated InceptionV3 and torch-fidelity's own numbers

N = 16  # images per folder
TOLERANCE = 1e-5  # relative (the bound); see the figures printed by test_fid_kid_is_equal_torch_fidelitys


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Weights file, two folders, a private TORCH_HOME and cache, and torch-fidelity's numbers."""
    import torch_fidelity

    root = tmp_path_factory.mktemp("inception")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(root / "torch"))
        mp.setenv("GANKIT_CACHE_DIR", str(root / "cache"))
        mp.setenv("GANKIT_OFFLINE", "1")
        w = make_inception_weights(root / "inception-test.pth")
        real = write_folder(root / "real", digits_uint8(N, seed=1))
        fake = write_folder(root / "fake", noisy(digits_uint8(N, seed=2), 0.3))
        expected = torch_fidelity.calculate_metrics(
            input1=str(fake), input2=str(real), cuda=False, fid=True, kid=True, isc=True,
            kid_subsets=1, kid_subset_size=N, isc_splits=1, feature_extractor_weights_path=str(w),
            cache=False, save_cpu_ram=True, verbose=False,
        )
        yield {"root": root, "weights": w, "real": real, "fake": fake, "expected": expected}


def run_eval(setup, mp: pytest.MonkeyPatch):
    """`gankit eval --real --fake --json` in-process: (parsed stdout, stderr, images through Inception)."""
    mp.setenv("TORCH_HOME", str(setup["root"] / "torch"))
    mp.setenv("GANKIT_CACHE_DIR", str(setup["root"] / "cache"))
    mp.setenv("GANKIT_OFFLINE", "1")
    mp.setenv("GANKIT_INCEPTION_WEIGHTS", str(setup["weights"]))
    seen = []
    original = extractors.Extractor.extract
    mp.setattr(extractors.Extractor, "extract",
               lambda self, images: seen.append(images.shape[0]) or original(self, images))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["eval", "--real", str(setup["real"]), "--fake", str(setup["fake"]), "--metrics", "fid,kid,is",
                     "--kid-subset-size", str(N), "--kid-subsets", "1", "--is-splits", "1", "--json",
                     "--device", "cpu"])
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue()), err.getvalue(), sum(seen)  # stdout is one JSON object and nothing else


@pytest.fixture(scope="module")
def first(setup):
    with pytest.MonkeyPatch.context() as mp:
        return run_eval(setup, mp)


def test_fid_kid_is_equal_torch_fidelitys(setup, first):
    got, _, _ = first
    expected = setup["expected"]
    pairs = {"fid": "frechet_inception_distance", "kid": "kernel_inception_distance_mean",
             "is": "inception_score_mean"}
    for ours, theirs in pairs.items():
        rel = abs(got["values"][ours] - expected[theirs]) / abs(expected[theirs])
        print(f"{ours}: gankit {got['values'][ours]!r} torch-fidelity {expected[theirs]!r} relative difference {rel:.2e}")
        assert rel <= TOLERANCE, (ours, got["values"][ours], expected[theirs], rel)
    assert got["values"]["is"] > 1.5  # the stand-in weights give informative class probabilities
    assert got["std"] == {"kid": 0.0}  # one subset: deterministic; one IS split has no spread (std None)
    assert got["rows"][2]["std"] is None
    implementations = {row["metric"]: row["implementation"] for row in got["rows"]}
    for metric, cls in (("fid", "FrechetInceptionDistance"), ("kid", "KernelInceptionDistance"), ("is", "InceptionScore")):
        assert implementations[metric].startswith("torchmetrics ") and implementations[metric].endswith(cls)


def test_one_inception_pass_per_image_and_provenance(setup, first):
    got, err, images = first
    assert images == 2 * N  # FID, KID and IS share one pass; real images once, generated once
    w_sha = hashlib.sha256(setup["weights"].read_bytes()).hexdigest()
    assert "not comparable to published numbers" in err
    for row in got["rows"]:
        assert row["feature_extractor"] == "inception" and row["weights_sha256"] == w_sha
        assert row["weights_published"] is False and row["input_resolution"] == 299
        assert row["antialias"] is False and "TensorFlow-1.x" in row["resize"]
        assert row["num_real"] == N and row["num_fake"] == N
        assert row["reference"]["root"] == str(setup["real"].resolve()) and row["reference"]["num_images"] == N
        assert row["fake_folder"]["root"] == str(setup["fake"].resolve())
    fid = got["rows"][0]
    assert fid["reference_stats"] == "computed" and fid["cache_file"].startswith(str(setup["root"] / "cache"))


def test_a_second_evaluation_reads_the_reference_from_cache(setup, first, monkeypatch):
    got, _, images = run_eval(setup, monkeypatch)
    assert images == N  # zero real-image passes
    assert got["rows"][0]["reference_stats"] == "cache"
    assert got["rows"][0]["cache_file"] == first[0]["rows"][0]["cache_file"]
    assert got["values"] == first[0]["values"]
