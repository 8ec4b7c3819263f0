"""Finding, downloading and checking the DINOv2 ViT-L/14 weights; skipping fd_dinov2 without them; `gankit weights`.
No network: timm's hub download is a stand-in (``weights_dinov2._hub_download``) that lays the file out as the
Hugging Face hub cache does (blobs named by their sha256, a snapshot linking to it), under a temporary HF_HOME."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import torch

from gankit.cli import main
from gankit.eval import weights_dinov2, weights_lookup
from gankit.eval.errors import CorruptWeightsError, WeightsMissingError

PAYLOAD = b"pretend these are timm's DINOv2 ViT-L/14 safetensors"


def hub_layout(root, payload: bytes, blob_name: str | None = None):
    """The file where the hub cache keeps it: blobs/<sha256>, snapshots/<rev>/model.safetensors -> the blob."""
    repo = root / weights_dinov2.MODEL_FOLDER
    blob = repo / "blobs" / (blob_name or hashlib.sha256(payload).hexdigest())
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(payload)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text("abc123")
    snapshot = repo / "snapshots" / "abc123" / weights_dinov2.HUB_FILE
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    if not snapshot.exists():
        os.symlink(os.path.relpath(blob, snapshot.parent), snapshot)
    return snapshot


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A private hub cache, no named file, downloads allowed but the stand-in network is down; calls counted."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv(weights_dinov2.ENV_PATH, raising=False)
    monkeypatch.delenv(weights_lookup.ENV_OFFLINE, raising=False)
    calls = []

    def down(cache_dir, log=None):
        calls.append(cache_dir)
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(weights_dinov2, "_hub_download", down)
    return calls


@pytest.fixture
def online(hub, monkeypatch):
    """The stand-in hub serves PAYLOAD into the cache, as hf_hub_download would."""
    def serve(cache_dir, log=None):
        hub.append(cache_dir)
        return str(hub_layout(cache_dir, PAYLOAD))

    monkeypatch.setattr(weights_dinov2, "_hub_download", serve)
    return hub


def test_the_download_is_timms_hub_download_of_the_published_weights():
    import timm.models._hub as timm_hub
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg("vit_large_patch14_dinov2.lvd142m")
    assert cfg.hf_hub_id == weights_dinov2.HUB_ID and "dinov2_vitl14_pretrain.pth" in cfg.url
    assert hasattr(timm_hub, "download_from_hf")  # what _hub_download calls


def test_offline_nothing_found_says_how_to_get_them(hub, monkeypatch):
    monkeypatch.setenv(weights_lookup.ENV_OFFLINE, "1")
    with pytest.raises(WeightsMissingError) as err:
        weights_dinov2.locate()
    first, *rest = str(err.value).splitlines()
    assert "no DINOv2 ViT-L/14 weights on this machine" in first and "GANKIT_OFFLINE" in first
    assert "gankit weights fetch dinov2" in rest[0] and weights_dinov2.ENV_PATH in "\n".join(rest)
    assert hub == []  # offline: no attempt


def test_a_failed_download_is_remembered(hub, tmp_path):
    with pytest.raises(WeightsMissingError, match="the download failed"):
        weights_dinov2.locate()
    with pytest.raises(WeightsMissingError, match="a download failed .* min ago"):
        weights_dinov2.locate()
    assert len(hub) == 1  # the second command did not try again
    marker = json.loads(weights_lookup.failure_marker(weights_dinov2.HUB_FILE_KNOWN).read_text())
    assert marker["url"].startswith("hf-hub:timm/") and "name resolution" in marker["error"]


def test_the_download_lands_in_the_hub_cache_and_is_found_there_offline(online, monkeypatch):
    found, notices = weights_dinov2.locate()
    assert found.path.read_bytes() == PAYLOAD and found.published and found.source == "downloaded"
    assert found.sha256 == hashlib.sha256(PAYLOAD).hexdigest() and "downloaded the DINOv2" in notices[0]
    monkeypatch.setenv(weights_lookup.ENV_OFFLINE, "1")
    again, notices = weights_dinov2.locate()
    assert again.path == found.path and again.source == "Hugging Face hub cache" and notices == [] and len(online) == 1


def test_a_damaged_cached_file_is_refused_offline_and_fetched_again_online(hub, tmp_path, monkeypatch):
    hub_layout(tmp_path / "hf" / "hub", b"half a download", blob_name=hashlib.sha256(PAYLOAD).hexdigest())
    monkeypatch.setenv(weights_lookup.ENV_OFFLINE, "1")
    with pytest.raises(CorruptWeightsError, match="damaged: sha256 .* but the hub stored it as"):
        weights_dinov2.locate()
    monkeypatch.delenv(weights_lookup.ENV_OFFLINE)

    def serve(cache_dir, log=None):
        snapshot = weights_dinov2.cache_path()
        snapshot.resolve().write_bytes(PAYLOAD)
        return str(snapshot)

    monkeypatch.setattr(weights_dinov2, "_hub_download", serve)
    found, notices = weights_dinov2.locate()
    assert found.path.read_bytes() == PAYLOAD and "downloaded it again" in notices[0]


def test_a_named_file_is_used_with_its_digests_and_a_warning(hub, tmp_path, monkeypatch):
    from safetensors.torch import save_file

    mine = tmp_path / "dinov2.safetensors"
    save_file({"w": torch.ones(3)}, str(mine))
    monkeypatch.setenv(weights_dinov2.ENV_PATH, str(mine))
    found, notices = weights_dinov2.locate()
    assert found.path == mine and found.source == weights_dinov2.ENV_PATH and not found.comparable
    assert found.content_sha256 == weights_lookup.tensors_sha256({"w": torch.ones(3)})
    assert "not comparable to published numbers" in notices[0] and hub == []
    found, _ = weights_dinov2.locate(str(mine))
    assert found.source == "eval.dinov2_weights"
    with pytest.raises(WeightsMissingError, match="eval.dinov2_weights names .* which is not a file"):
        weights_dinov2.locate(str(tmp_path / "nope.pth"))


def test_fd_dinov2_is_skipped_without_its_weights_with_the_command_that_gets_them(hub, tmp_path, monkeypatch):
    from gankit.core.plugins import get_host
    from gankit.eval.engine import Engine
    from gankit.recipe.schema import EvalSection

    monkeypatch.setenv(weights_lookup.ENV_OFFLINE, "1")
    cfg = EvalSection.model_validate({"metrics": ["fd_dinov2", "swd"], "cache_dir": str(tmp_path / "cache")})
    engine = Engine(cfg, torch.device("cpu"), registry=get_host().registry)
    notices = engine.prepare()
    assert list(engine.metrics) == ["swd"] and "no DINOv2 ViT-L/14 weights" in engine.skipped["fd_dinov2"]
    assert any(n.startswith("eval: skipping fd_dinov2:") for n in notices)
    refuse = EvalSection.model_validate({"metrics": ["fd_dinov2"], "on_missing_weights": "refuse"})
    with pytest.raises(WeightsMissingError, match=r"evaluation \(fd_dinov2\) needs the DINOv2 ViT-L/14 weights"):
        Engine(refuse, torch.device("cpu"), registry=get_host().registry).prepare()


def test_weights_path_and_fetch_dinov2(online, capsys):
    assert main(["weights", "path", "dinov2"]) == 0
    out = capsys.readouterr().out
    assert "DINOv2 ViT-L/14 weights (fd_dinov2) in this order" in out and "eval.dinov2_weights" in out
    assert "a run uses now: nothing" in out
    assert main(["weights", "fetch", "dinov2"]) == 0
    assert "fetched:" in capsys.readouterr().out and len(online) == 1
    assert main(["weights", "fetch", "dinov2"]) == 0
    assert "already there" in capsys.readouterr().out and len(online) == 1
    assert main(["weights", "path"]) == 0  # both
    out = capsys.readouterr().out
    assert "Inception weights in this order" in out and "its sha256 matches the hub's" in out


def test_the_network_call_asks_the_hub_once_then_timms_download(tmp_path, monkeypatch):
    import io
    import urllib.error
    import urllib.request

    import timm.models._hub as timm_hub

    asked, said = [], []
    monkeypatch.setattr(urllib.request, "urlopen", lambda req, timeout: asked.append((req.full_url, req.method,
                                                                                      timeout)) or io.BytesIO())
    monkeypatch.setattr(timm_hub, "download_from_hf", lambda model, name, cache_dir: f"{cache_dir}/{model}/{name}")
    got = weights_dinov2._hub_download(tmp_path, said.append)
    assert got == f"{tmp_path}/{weights_dinov2.HUB_ID}/model.safetensors" and said[0].startswith("downloading")
    assert asked == [(f"https://huggingface.co/{weights_dinov2.HUB_ID}/resolve/main/model.safetensors", "HEAD", 15.0)]

    def offline(req, timeout):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(weights_lookup.DownloadFailed, match=r"^URLError: \[Errno -2\] Name or service not known$"):
        weights_dinov2._download(tmp_path / "x", said.append)
    assert len(said) == 1  # nothing said about a download that never started
