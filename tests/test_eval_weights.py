"""Finding, downloading and checking the Inception weights; `gankit weights`. No network: the
internet is a stand-in (``weights._urlopen``), and every file lives under a temporary TORCH_HOME."""

from __future__ import annotations

import hashlib
import io
import socket
import urllib.error

import pytest

from gankit.cli import main
from gankit.eval import weights
from gankit.eval.errors import CorruptWeightsError, WeightsMissingError

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
    return tmp_path


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
    for expected in (str(weights.cache_path()), weights.URL, "gankit weights fetch", weights.ENV_PATH,
                     "eval.inception_weights", "on_missing_weights: skip", "offline"):
        assert expected in message
    assert "Traceback" not in message and "urlopen" not in message


@pytest.mark.parametrize("error", [socket.timeout("timed out"), ConnectionResetError("reset"), TimeoutError()])
def test_any_network_error_means_offline(home, monkeypatch, error):
    class Broken(io.BytesIO):
        def read(self, n=-1):
            raise error

    monkeypatch.setattr(weights, "_urlopen", lambda url, timeout: Broken())
    assert weights.download() is None
    assert list(weights.cache_path().parent.iterdir()) == []  # no partial file left behind


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
    mine.write_bytes(b"my own weights")
    monkeypatch.setenv(weights.ENV_PATH, str(mine))
    found, notices = weights.locate()
    assert found.path == mine and found.source == weights.ENV_PATH and not found.published
    assert found.sha256 == hashlib.sha256(b"my own weights").hexdigest()
    assert "not comparable to published numbers" in notices[0]

    recipe_file = home / "from-recipe.pth"
    recipe_file.write_bytes(b"other")
    found, _ = weights.locate(str(recipe_file))  # the recipe key wins over the environment
    assert found.path == recipe_file and found.source == "eval.inception_weights"


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
    assert "cannot download" in err and weights.URL in err and weights.ENV_PATH in err
    assert "Traceback" not in err


def test_weights_fetch_online_puts_the_file_in_the_cache(home, online, capsys):
    assert main(["weights", "fetch"]) == 0
    assert weights.cache_path().read_bytes() == PAYLOAD
    assert main(["weights", "fetch"]) == 0
    assert "already there" in capsys.readouterr().out
    assert len(online) == 1
