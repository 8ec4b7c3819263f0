"""The real FID weights on this machine, as a run finds them (`gankit weights fetch` installs them, and
`scripts/setup.sh --test` runs it): the published network bit for bit as far as ../shared/parity holds it,
FID and KID from `gankit eval` equal to torch-fidelity's `calculate_metrics` with the same file, and the
Inception Score skipped with its reason when the file is the converted feature part.

Without the weights these tests skip and name the command that gets them; in CI (CI=true) they fail
instead, so that CI never passes without computing a real FID.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch
from eval_fixtures import digits_uint8, noisy, write_folder

from gankit.cli import main
from gankit.eval import weights, weights_wheel

PARITY = Path(__file__).resolve().parents[1].parent / "shared" / "parity" / "inception_partial.pt"
N = 16  # images per folder (Inception costs ~0.4 s per image on this machine's CPU)
TOLERANCE = 1e-5  # relative, as the torchmetrics/torch-fidelity agreement tests


@pytest.fixture(scope="module")
def real(real_inception_weights):
    """The weights file a run uses on this machine (conftest.py: skipped, or failed in CI, when absent)."""
    return real_inception_weights


def bits(t: torch.Tensor) -> bytes:
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def test_the_weights_equal_the_published_file_bit_for_bit(real):
    partial = torch.load(PARITY, weights_only=True)
    state = weights.read_state_dict(real.path, real.source)
    assert len(partial["tensors"]) == partial["meta"]["count"] == 119
    for key, published in partial["tensors"].items():
        mine = state[key]
        assert mine.dtype == published.dtype and mine.shape == published.shape, key
        assert bits(mine) == bits(published), key


def test_the_weights_are_what_they_claim(real):
    state = weights.read_state_dict(real.path, real.source)
    if real.published:
        assert weights.sha256_of(real.path) == weights.SHA256
        return
    assert weights.tensors_sha256(state) == weights.FEATURES_CONTENT_SHA256 == real.content_sha256
    from gankit.eval.extractors import inception_module

    layout = inception_module(None).state_dict()
    assert list(state) == list(layout) and all(state[k].shape == layout[k].shape for k in layout)
    assert state["fc.weight"].isnan().all()  # no classifier in these weights
    gammas = [v for k, v in state.items() if k.endswith("bn.weight")]
    assert len(gammas) == 94 and all(bool((g == 1).all()) for g in gammas)
    assert real.origin == weights_wheel.SOURCE


@pytest.fixture(scope="module")
def folders(tmp_path_factory, real):
    """Two image folders, torch-fidelity's FID and KID on them with the same weights file, a private cache."""
    import torch_fidelity

    root = tmp_path_factory.mktemp("real-weights")
    real_dir = write_folder(root / "real", digits_uint8(N, seed=1))
    fake_dir = write_folder(root / "fake", noisy(digits_uint8(N, seed=2), 0.3))
    expected = torch_fidelity.calculate_metrics(
        input1=str(fake_dir), input2=str(real_dir), cuda=False, fid=True, kid=True, kid_subsets=1,
        kid_subset_size=N, feature_extractor_weights_path=str(real.path), cache=False, save_cpu_ram=True,
        verbose=False,
    )
    return {"root": root, "real": real_dir, "fake": fake_dir, "expected": expected}


def gankit_eval(folders, real, monkeypatch, metrics: str) -> tuple[int, str, str]:
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(folders["root"] / "cache"))
    monkeypatch.setenv(weights.ENV_PATH, str(real.path))
    monkeypatch.setenv(weights.ENV_OFFLINE, "1")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["eval", "--real", str(folders["real"]), "--fake", str(folders["fake"]), "--metrics", metrics,
                     "--kid-subset-size", str(N), "--kid-subsets", "1", "--json", "--device", "cpu"])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.slow  # ~1 min of Inception on the CPU
def test_fid_and_kid_equal_torch_fidelitys_with_the_same_file(folders, real, monkeypatch):
    code, out, err = gankit_eval(folders, real, monkeypatch, "fid,kid,is")
    assert code == 0, err
    got = json.loads(out)
    for ours, theirs in (("fid", "frechet_inception_distance"), ("kid", "kernel_inception_distance_mean")):
        expected = folders["expected"][theirs]
        rel = abs(got["values"][ours] - expected) / abs(expected)
        print(f"{ours}: gankit {got['values'][ours]!r} torch-fidelity {expected!r} relative difference {rel:.2e}")
        assert rel <= TOLERANCE, (ours, got["values"][ours], expected, rel)
    assert "not comparable to published numbers" not in err
    for row in got["rows"]:
        assert row["weights_published"] is True and row["weights_origin"] == real.origin
        assert row["weights_sha256"] == real.sha256 and row["weights_content_sha256"] == real.content_sha256
    if real.features_only:
        assert set(got["values"]) == {"fid", "kid"}
        assert got["skipped"] == {"is": weights.IS_NEEDS_CLASSIFIER}
        assert f"eval: skipping is: {weights.IS_NEEDS_CLASSIFIER}; measuring fid, kid" in err
    else:
        assert got["values"]["is"] > 1


@pytest.mark.slow
def test_the_inception_score_alone_is_skipped_with_its_reason_or_measured(folders, real, monkeypatch):
    code, out, err = gankit_eval(folders, real, monkeypatch, "is")
    if real.features_only:
        assert code == 2 and out == ""
        assert f"is: {weights.IS_NEEDS_CLASSIFIER}" in err and "--metrics swd" in err and "Traceback" not in err
    else:  # the published file has the classifier
        assert code == 0 and json.loads(out)["values"]["is"] > 1
