"""The Inception weights: where gankit looks, how it downloads, how it checks them.

Search order (the first that applies wins):

1. a file the user names: ``eval.inception_weights`` (or ``--inception-weights``),
   else the environment variable ``GANKIT_INCEPTION_WEIGHTS``. It is used even
   when its sha256 is not the published one, with a warning that the numbers
   are then not comparable to published ones;
2. torch's hub cache, ``torch.hub.get_dir()/checkpoints/<FILE_NAME>`` (that is
   ``$TORCH_HOME/hub/checkpoints``), where torch-fidelity keeps the same file;
   a cached file with the wrong sha256 is a corrupt download, fetched again
   when online;
3. a download from torch-fidelity's release into that cache (a short socket
   timeout; any network error means "offline", never a traceback).
   ``GANKIT_OFFLINE=1`` skips the attempt.

The published file's sha256 (its first 8 hex digits are in the file name, the
torch.hub convention) is recorded in independent public references to this
exact file, all agreeing on the full digest and a size of 95,628,359 bytes.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from gankit.eval.errors import CorruptWeightsError, WeightsError, WeightsMissingError

# torch-fidelity's release of the TensorFlow 2015-12-05 Inception weights
# (torch_fidelity.feature_extractor_inceptionv3.URL_INCEPTION_V3).
URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
FILE_NAME = "weights-inception-2015-12-05-6726825d.pth"
SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
SIZE = 95_628_359
ENV_PATH = "GANKIT_INCEPTION_WEIGHTS"
ENV_OFFLINE = "GANKIT_OFFLINE"
TIMEOUT_S = 15.0  # per connect / read: a machine without a network fails fast
DEADLINE_S = 900.0  # the whole download: 95 MB at >= ~100 kB/s


@dataclass(frozen=True)
class WeightsFile:
    """The weights file an evaluation uses, and why."""

    path: Path
    sha256: str
    source: str  # "eval.inception_weights", "GANKIT_INCEPTION_WEIGHTS", "torch hub cache", "downloaded"

    @property
    def published(self) -> bool:
        """Whether this is byte-for-byte the published file (numbers comparable to papers)."""
        return self.sha256 == SHA256


def cache_path() -> Path:
    """Where the weights live in torch's hub cache (honours ``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FILE_NAME


_hashes: dict[tuple[str, int, int], str] = {}


def sha256_of(path: str | Path) -> str:
    """The file's sha256 (remembered per path, size and mtime: hashing 95 MB takes a moment)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hashes:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


def named_path(configured: str | None) -> tuple[Path, str] | None:
    """The user-named file and where the name came from, or None."""
    if configured:
        return Path(configured).expanduser(), "eval.inception_weights"
    env = os.environ.get(ENV_PATH, "").strip()
    if env:
        return Path(env).expanduser(), ENV_PATH
    return None


def offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() not in ("", "0", "false", "no")


def how_to_get() -> str:
    """The instructions every missing-weights message ends with."""
    return (
        f"    put the file at {cache_path()}\n"
        f"    (download it from {URL}\n"
        f"     or run `gankit weights fetch` on a machine with internet and copy the file over),\n"
        f"    or point {ENV_PATH} (or the recipe key eval.inception_weights) at a copy;\n"
        f"    or set eval.on_missing_weights: skip to train without the metrics that need it"
    )


def _urlopen(url: str, timeout: float):
    """The network call (one place, so that tests can stand in for the internet)."""
    request = urllib.request.Request(url, headers={"User-Agent": "gankit"})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (a fixed https URL)


class _WriteError(Exception):
    """A local disk problem during a download (not a network one)."""


def download(dest: Path | None = None, log: Callable[[str], None] | None = None) -> Path | None:
    """Fetch the published file into ``dest`` (default: the hub cache); None when offline.

    The bytes go to a temporary file beside ``dest``, are checked against the
    published sha256, and only then renamed over ``dest`` (atomic: a reader
    never sees half a file, and two processes downloading at once are safe).
    """
    dest = Path(dest or cache_path())
    if offline():
        return None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise WeightsMissingError(f"cannot write the Inception weights to {dest.parent}: {exc}") from None
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            if log:
                log(f"downloading Inception weights from {URL} to {dest}")
            start = time.monotonic()
            with _urlopen(URL, TIMEOUT_S) as response:
                while block := response.read(1 << 20):
                    digest.update(block)
                    try:
                        out.write(block)
                    except OSError as exc:
                        raise _WriteError(exc) from None
                    if time.monotonic() - start > DEADLINE_S:
                        raise TimeoutError(f"download took longer than {DEADLINE_S:.0f} s")
    except _WriteError as exc:
        tmp.unlink(missing_ok=True)
        raise WeightsMissingError(f"cannot write the Inception weights to {dest.parent}: {exc}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        # URLError (no DNS, refused, HTTP 404), timeouts, resets: all mean "not online now".
        tmp.unlink(missing_ok=True)
        if log:
            log(f"download failed: {type(exc).__name__}: {exc}")
        return None
    if digest.hexdigest() != SHA256:
        tmp.unlink(missing_ok=True)
        raise CorruptWeightsError(
            f"the file downloaded from {URL} has sha256 {digest.hexdigest()}, not the published {SHA256}; "
            "it was discarded (a proxy or a changed release?)"
        )
    os.replace(tmp, dest)
    return dest


def locate(
    configured: str | None = None,
    allow_download: bool = True,
    log: Callable[[str], None] | None = None,
) -> tuple[WeightsFile, list[str]]:
    """The weights file to use and notices for the user; raises when there is none.

    Raises :class:`WeightsMissingError` (nothing found, nothing downloadable)
    or :class:`CorruptWeightsError` (a cached file with the wrong sha256 and
    no network to replace it).
    """
    notices: list[str] = []
    named = named_path(configured)
    if named is not None:
        path, origin = named
        if not path.is_file():
            raise WeightsMissingError(f"{origin} names '{path}', which is not a file\n" + how_to_get())
        digest = sha256_of(path)
        if digest != SHA256:
            notices.append(
                f"warning: the Inception weights {path} (from {origin}) have sha256 {digest}, not the published "
                f"{SHA256}: FID/IS/KID from them are not comparable to published numbers"
            )
        return WeightsFile(path, digest, origin), notices

    path = cache_path()
    if path.is_file():
        digest = sha256_of(path)
        if digest == SHA256:
            return WeightsFile(path, digest, "torch hub cache"), notices
        corrupt = (
            f"the cached Inception weights {path} are a corrupt download: sha256 {digest}, "
            f"size {path.stat().st_size:,} bytes; the published file has sha256 {SHA256}, {SIZE:,} bytes"
        )
        fetched = download(path, log) if allow_download else None
        if fetched is None:
            raise CorruptWeightsError(
                corrupt + f"\n    delete it and run `gankit weights fetch`, or download {URL} to that path"
            )
        notices.append(corrupt + "; downloaded it again")
        return WeightsFile(fetched, sha256_of(fetched), "downloaded"), notices

    fetched = download(path, log) if allow_download else None
    if fetched is None:
        raise WeightsMissingError(
            "the Inception weights are not on this machine and cannot be downloaded (offline?)\n" + how_to_get()
        )
    notices.append(f"downloaded the Inception weights to {fetched}")
    return WeightsFile(fetched, sha256_of(fetched), "downloaded"), notices


def load_state_dict(weights: WeightsFile) -> dict[str, torch.Tensor]:
    """The file's tensors, read with ``weights_only=True`` (loading never runs code)."""
    try:
        state = torch.load(weights.path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or a pickle that wants to run code
        raise WeightsError(
            f"the Inception weights {weights.path} (from {weights.source}) cannot be read as a state dict: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"the Inception weights {weights.path} are not a state dict of tensors")
    return state
