"""The DINOv2 ViT-L/14 weights FD-DINOv2 needs: their known file, and the lookup for them.

The published DINOv2 weights (Oquab et al. 2023, ``dinov2_vitl14_pretrain.pth``, Apache 2.0) as timm
serves them: ``model.safetensors`` of the Hugging Face hub repository
``timm/vit_large_patch14_dinov2.lvd142m``, Meta's tensors under timm's names (``mask_token`` dropped).

Search order (:func:`gankit.eval.weights_lookup.locate`):

1. a file the user names: ``eval.dinov2_weights``, else ``$GANKIT_DINOV2_WEIGHTS``: timm's
   ``model.safetensors``, or Meta's ``dinov2_vitl14_pretrain.pth`` (read with ``weights_only=True``);
   gankit cannot tell it from other weights of the same shapes, so it is recorded by its sha256 and
   content digest, with a warning that numbers from it are not known to be comparable;
2. the Hugging Face hub cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
   ``~/.cache/huggingface/hub``), where timm's download keeps the file. The hub stores an LFS file
   under its sha256 (``blobs/<sha256>``, the snapshot a link to it): a cached file whose bytes do not
   hash to its blob's name is a damaged download, fetched again when online;
3. timm's hub download (``timm.models._hub.download_from_hf``, i.e. ``huggingface_hub.hf_hub_download``,
   which checks the file against the hub's sha256), remembered when it fails like Inception's.

No digest of the file is pinned here: it could not be checked from the machine this was written on.
The hub's own check stands in for it, and every row names the file's sha256, so numbers from
different files are never pooled (``gankit compare`` matches ``weights_sha256``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from gankit.eval import weights_lookup as lookup
from gankit.eval.weights_lookup import DownloadFailed, Known, Log, Spec, WeightsFile, sha256_of

HUB_ID = "timm/vit_large_patch14_dinov2.lvd142m"
HUB_FILE = "model.safetensors"
TIMM_MODEL = "vit_large_patch14_dinov2"
ENV_PATH = "GANKIT_DINOV2_WEIGHTS"
ORIGIN = f"the published DINOv2 ViT-L/14 weights ({HUB_ID}, {HUB_FILE}, checked by the hub's sha256)"
MODEL_FOLDER = "models--" + HUB_ID.replace("/", "--")


def hub_cache() -> Path:
    """The Hugging Face hub cache, read from the environment now (huggingface_hub reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE", "").strip():
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME", "").strip():
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path("~/.cache").expanduser()) / "huggingface" / "hub"


def cache_path() -> Path:
    """The cached ``model.safetensors`` (its snapshot in the hub cache), or where it would be."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(HUB_ID, HUB_FILE, cache_dir=str(hub_cache()))
    if isinstance(found, str):
        return Path(found)
    return hub_cache() / MODEL_FOLDER / HUB_FILE  # not there (yet): the folder still holds the failure marker


def how_to_get() -> str:
    return (
        "    run `gankit weights fetch dinov2` where the Hugging Face hub is reachable (timm's download, 1.2 GB),\n"
        f"    then copy {hub_cache() / MODEL_FOLDER} to the same place here,\n"
        f"    or point {ENV_PATH} (or the recipe key eval.dinov2_weights) at a copy of {HUB_FILE}\n"
        "    (or of Meta's dinov2_vitl14_pretrain.pth)"
    )


def _check(path: Path) -> str | None:
    """None when the file's bytes hash to the name of the hub blob it links to (the hub's sha256)."""
    blob = Path(os.path.realpath(path)).name
    if not re.fullmatch(r"[0-9a-f]{64}", blob):
        return None  # not a blob the hub named by its sha256 (a plain copy): nothing to check it against
    digest = sha256_of(path)
    return None if digest == blob else f"sha256 {digest}, but the hub stored it as {blob}"


def _hub_download(cache_dir: Path, log: Log = None) -> str:
    """timm's hub download of the file into ``cache_dir`` (one place, so that tests stand in for the network).

    One plain request first, with Inception's short timeout: offline, huggingface_hub would retry five
    times with growing pauses (about half a minute of warnings) before giving up.
    """
    import urllib.request

    from timm.models._hub import download_from_hf

    from gankit.eval.weights import TIMEOUT_S

    probe = urllib.request.Request(f"https://huggingface.co/{HUB_ID}/resolve/main/{HUB_FILE}", method="HEAD",
                                   headers={"User-Agent": "gankit"})
    urllib.request.urlopen(probe, timeout=TIMEOUT_S).close()  # noqa: S310 (a fixed https URL)
    if log:  # nothing is said before the hub answers, so that an offline machine fails quietly
        log(f"downloading the DINOv2 ViT-L/14 weights ({HUB_ID}, 1.2 GB) into {cache_dir}")
    return download_from_hf(HUB_ID, HUB_FILE, cache_dir=str(cache_dir))


def _download(dest: Path, log: Log = None) -> Path:
    try:
        got = Path(_hub_download(hub_cache(), log))
    except ImportError as exc:
        raise DownloadFailed(f"timm's hub download needs huggingface_hub ({exc})") from None
    except Exception as exc:  # noqa: BLE001 (huggingface_hub raises many types; all mean "not now")
        why = getattr(exc, "reason", None) or (str(exc).splitlines()[0] if str(exc) else "")
        raise DownloadFailed(f"{type(exc).__name__}: {why}") from None
    problem = _check(got)
    if problem is not None:
        got.unlink(missing_ok=True)
        raise DownloadFailed(f"the downloaded file is damaged ({problem}); it was discarded")
    return got


HUB_FILE_KNOWN = Known("hub", ORIGIN, cache_path, _check, fetch=_download, kept_in="Hugging Face hub cache",
                       url=f"hf-hub:{HUB_ID}/{HUB_FILE}")


def identify(path: Path, source: str) -> WeightsFile:
    """A named file: recorded by its sha256 and content digest; no published digest to compare it with."""
    content = lookup.content_sha256_of(path, source, "DINOv2 weights")
    return WeightsFile(path, sha256_of(path), source, content, None,
                       "a DINOv2 weights file named by the user (not checked against a published digest)",
                       frozenset({"features"}))


SPEC = Spec("dinov2", "DINOv2 ViT-L/14 weights", "eval.dinov2_weights", ENV_PATH, (HUB_FILE_KNOWN,), how_to_get,
            identify)


def locate(configured: str | None = None, allow_download: bool = True, log: Log = None):
    """The DINOv2 weights to use and notices for the user (:func:`gankit.eval.weights_lookup.locate`)."""
    return lookup.locate(SPEC, configured, allow_download, log)


def load_state_dict(weights: WeightsFile) -> dict[str, torch.Tensor]:
    """The file's tensors under timm's names (Meta's file: ``mask_token`` dropped, the only difference for ViT-L)."""
    state = lookup.read_state_dict(weights.path, weights.source, "DINOv2 weights")
    state.pop("mask_token", None)  # Meta's masked-image-modelling token: not part of the inference network
    return state
