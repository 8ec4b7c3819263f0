"""The Inception weights FID, IS and KID need: fetch them, or see where gankit looks.

    gankit weights fetch     download into torch's hub cache (checks the published sha256)
    gankit weights path      where gankit looks, in order, and what it finds there

Offline machine: run `gankit weights fetch` where there is internet and copy
the file to the path `gankit weights path` prints (or point
GANKIT_INCEPTION_WEIGHTS at it).
"""

from __future__ import annotations

import sys

NAME = "weights"
HELP = "fetch the Inception weights, or show where gankit looks for them"


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["fetch", "path"], help="fetch: download into the cache; path: show lookup")
    parser.add_argument("--force", action="store_true", help="fetch: download even when a good copy is cached")


def _describe(path) -> str:
    from gankit.eval import weights as w

    if not path.is_file():
        return "not there"
    digest = w.sha256_of(path)
    if digest == w.SHA256:
        return "found, sha256 matches the published file"
    return f"found, sha256 {digest} (not the published file)"


def _path() -> int:
    from gankit.eval import weights as w

    named = w.named_path(None)
    cache = w.cache_path()
    print(f"gankit looks for the Inception weights ({w.FILE_NAME}) in this order:")
    print("  1. the recipe key eval.inception_weights, when a recipe sets it")
    if named:
        print(f"  2. ${w.ENV_PATH} = {named[0]}: {_describe(named[0])}")
    else:
        print(f"  2. ${w.ENV_PATH}: not set")
    cache_state = _describe(cache)
    if "not the published" in cache_state:
        cache_state = cache_state.replace("found", "a corrupt download") + "; `gankit weights fetch` replaces it"
    print(f"  3. torch's hub cache: {cache}: {cache_state}")
    state = "skipped: $GANKIT_OFFLINE is set" if w.offline() else "when online"
    print(f"  4. a download from {w.URL} into the cache ({state})")
    print(f"published sha256: {w.SHA256} ({w.SIZE:,} bytes)")
    return 0


def _fetch(force: bool) -> int:
    from gankit.core.errors import GankitError
    from gankit.eval import weights as w

    dest = w.cache_path()
    if dest.is_file() and not force:
        if w.sha256_of(dest) == w.SHA256:
            print(f"already there: {dest} (sha256 matches the published file)")
            return 0
        print(f"{dest} is a corrupt download (wrong sha256); downloading it again", file=sys.stderr)
    if w.offline():
        raise GankitError(f"${w.ENV_OFFLINE} is set; unset it to download {w.URL}")
    got = w.download(dest, log=lambda msg: print(msg, file=sys.stderr))
    if got is None:
        raise GankitError(
            f"cannot download {w.URL} (offline?)\n"
            f"    download it on a machine with internet and copy it to {dest},\n"
            f"    or point {w.ENV_PATH} at a copy"
        )
    print(f"fetched: {got} (sha256 matches the published file)")
    return 0


def run(args) -> int:
    return _fetch(args.force) if args.action == "fetch" else _path()
