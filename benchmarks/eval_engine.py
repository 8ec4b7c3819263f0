"""This checkout's evaluation engine vs another checkout's, per-image cost on the same images, in one run.

    git worktree add ../gankit-before <commit>     # e.g. the commit before torchmetrics became the engine
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/eval_engine.py --before ../gankit-before --rounds 3

Each round runs ``benchmarks/eval_cache.py --rounds 1`` of both checkouts in
fresh processes, in alternating order (so a busy neighbour slows both alike),
with the same options: the same real images (the shared CelebA sample at
64x64), the same untrained DCGAN and seed, SWD + FID with the same Inception
weights (the published ones or the tests' generated stand-in). From each it
reads the three wall times eval_cache.py prints and turns them into a cost
per image:

- first: (num_real + num_fake) images decoded or generated, through Inception, statistics computed;
- later: num_fake generated images through Inception against the reference already in memory.

Prints every round and the median ratio this/before of each (below 1: this checkout is cheaper).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROUND = re.compile(r"round 1: first\s+([\d.]+)s\s+cached\s+([\d.]+)s\s+later\s+([\d.]+)s")


def one_round(checkout: Path, args) -> dict[str, float]:
    """eval_cache.py of ``checkout``, one round, in a fresh process: seconds per image, first and later."""
    cmd = [sys.executable, str(checkout / "benchmarks" / "eval_cache.py"), "--rounds", "1",
           "--num-real", str(args.num_real), "--num-fake", str(args.num_fake), "--batch-size", str(args.batch_size)]
    if args.weights:
        cmd += ["--weights", args.weights]
    # The checkout's own gankit and plugins come first on the path, ahead of what this environment installed.
    paths = [checkout, *sorted(d for d in (checkout / "plugins").iterdir() if d.is_dir())]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths)), "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    found = ROUND.search(done.stdout)
    if done.returncode != 0 or not found:
        raise SystemExit(f"{checkout}: eval_cache.py failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    first, _cached, later = map(float, found.groups())
    return {"first": first / (args.num_real + args.num_fake), "later": later / args.num_fake}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, type=Path, help="the other checkout (a git worktree)")
    p.add_argument("--num-real", type=int, default=200)
    p.add_argument("--num-fake", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--weights", default=None, help="an Inception weights file (default: eval_cache.py's choice)")
    args = p.parse_args()
    contenders = {"this": REPO, "before": args.before.resolve()}
    costs: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    for r in range(args.rounds):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in order:
            costs[name].append(one_round(contenders[name], args))
        this, before = costs["this"][-1], costs["before"][-1]
        print(f"round {r + 1}: first {this['first'] * 1e3:6.1f} vs {before['first'] * 1e3:6.1f} ms/image   "
              f"later {this['later'] * 1e3:6.1f} vs {before['later'] * 1e3:6.1f} ms/image (this vs before)")
    print(f"\nnum_real {args.num_real}, num_fake {args.num_fake}, {args.rounds} rounds, before = {args.before}")
    for kind in ("first", "later"):
        ratios = [a[kind] / b[kind] for a, b in zip(costs["this"], costs["before"])]
        print(f"per-image cost this/before, {kind} evaluation (median of rounds): {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
