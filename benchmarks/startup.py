"""How long gankit takes to start: `gankit --help`, `gankit list` (its listing cached, and not), `import torch`.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/startup.py [--rounds 5]

Each command runs as a user runs it: a fresh process of this environment's
``gankit`` script, imports included, its output thrown away. The contenders
alternate round by round, so a busy neighbour slows all alike. ``list
(cold)`` starts each round from an empty ``$GANKIT_CACHE_DIR``, so it
imports every component (torch and all plugins) and writes the cache;
``list`` then finds it. ``python -c 'import torch'`` is the floor any
command that builds a model pays. Prints every round and the medians; the
last line is the medians of `--help` and `list`. Targets: `--help` under
0.5 s, `list` under 2 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def gankit_script() -> str:
    here = Path(sys.executable).with_name("gankit")  # the environment's console script, as a user types it
    return str(here) if here.is_file() else shutil.which("gankit") or "gankit"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    gankit = gankit_script()
    cache = Path(tempfile.mkdtemp(prefix="gankit-startup-"))
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "GANKIT_CACHE_DIR": str(cache)}
    contenders = {
        "--help": [gankit, "--help"],
        "list (cold)": [gankit, "list"],
        "list": [gankit, "list"],
        "import torch": [sys.executable, "-c", "import torch"],
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    try:
        for r in range(args.rounds):
            for name, cmd in contenders.items():
                if name == "list (cold)":
                    shutil.rmtree(cache, ignore_errors=True)
                times[name].append(timed(cmd, env))
            print(f"round {r + 1}: " + "  ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()), flush=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    median = {name: statistics.median(t) for name, t in times.items()}
    print("medians: " + "  ".join(f"{n} {m:.2f} s" for n, m in median.items()))
    print(f"--help {median['--help']:.2f} s (target < 0.5), list {median['list']:.2f} s (target < 2)")


if __name__ == "__main__":
    main()
