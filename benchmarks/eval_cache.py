"""A run's first evaluation (real images decoded and through the extractor) vs later ones that reuse
the reference statistics, wall time.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/eval_cache.py
    .venv/bin/python benchmarks/eval_cache.py --num-real 10000 --num-fake 10000 --device cuda --rounds 3

The trainer's own ``Evaluator`` with SWD (no weights needed) and FID, on the
shared CelebA sample at 64x64 (``digits`` when it is absent), scoring an
untrained DCGAN. FID uses the published Inception weights when this machine
has them (torch's hub cache, $GANKIT_INCEPTION_WEIGHTS, or --weights); else a
stand-in with the real architecture generated as the tests do
(tests/eval_fixtures.py; same cost, numbers not comparable to published
ones); else SWD alone. Each round times, in this order:

- first:  a new run's first evaluation with an empty cache folder (computes the reference);
- cached: a new run's first evaluation with that folder filled (FID's reference features from disk);
- later:  that run's second evaluation (the reference held in memory).

Prints each round and the median ratios first / cached and first / later.
Preparing the extractors (loading weights) happens at run start and is not timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def fid_weights(explicit: str | None, tmp: Path) -> tuple[str | None, str]:
    """(weights path for eval.inception_weights, or None for the default lookup; how it was chosen), or no FID."""
    from gankit.eval import weights

    if explicit:
        return explicit, f"weights {explicit}"
    if os.environ.get(weights.ENV_PATH) or weights.cache_path().is_file():
        return None, "the published Inception weights"
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from eval_fixtures import make_inception_weights
    except ImportError:
        return "", "no Inception weights: SWD only"
    path = make_inception_weights(tmp / "inception-standin.pth")
    return str(path), "a generated stand-in for the Inception weights (real architecture and cost)"


def make_recipe(args, weights: str | None, cache_dir: str):
    from gankit.recipe import validate

    metrics = ["swd"] if weights == "" else ["swd", "fid"]
    if (SHARED / "celeba_sample").is_dir() and not args.digits:
        data = {"name": "imagefolder", "root": str(SHARED / "celeba_sample"), "image_size": 64, "channels": 3}
    else:
        data = {"name": "digits", "image_size": 32, "channels": 1}
    return validate({
        "name": "bench-eval", "device": args.device, "data": {**data, "workers": 0},
        "generator": {"name": "dcgan"}, "discriminator": {"name": "dcgan"}, "train": {"steps": 1},
        "eval": {"metrics": metrics, "num_real": args.num_real, "num_fake": args.num_fake, "cache_dir": cache_dir,
                 "inception_weights": weights or None, "batch_size": args.batch_size},
        "log": {"progress": "none", "wandb": {"mode": "disabled"}},
    }, "benchmark recipe")


def new_run(args, weights, cache_dir, device):
    """What a run has at its start: an Evaluator, prepared (weights loaded), and a generator."""
    from gankit.core.plugins import get_host
    from gankit.eval.evaluator import Evaluator
    from gankit.recipe.build import build_dataset, build_generator

    recipe = make_recipe(args, weights, cache_dir)
    evaluator = Evaluator(recipe, device, lambda: build_dataset(recipe), registry=get_host().registry)
    evaluator.prepare(allow_download=False)
    torch.manual_seed(0)
    G = build_generator(recipe).to(device)
    return recipe, evaluator, G


def timed_evaluation(evaluator, G, device) -> tuple[float, list]:
    from gankit.sampling import generate_from

    t0 = time.perf_counter()
    rows = evaluator.evaluate(lambda z: generate_from(G, z), G.nz, step=1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-real", type=int, default=200, help="eval.num_real")
    p.add_argument("--num-fake", type=int, default=50, help="eval.num_fake")
    p.add_argument("--batch-size", type=int, default=50, help="eval.batch_size")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--weights", default=None, help="an Inception weights file for FID")
    p.add_argument("--digits", action="store_true", help="use the digits dataset even when the CelebA sample is there")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    os.environ["GANKIT_OFFLINE"] = "1"  # a benchmark never downloads
    device = torch.device(args.device)
    times: dict[str, list[float]] = {"first": [], "cached": [], "later": []}
    with tempfile.TemporaryDirectory() as tmp:
        weights, how = fid_weights(args.weights, Path(tmp))
        for r in range(args.rounds):
            cache_dir = str(Path(tmp) / f"cache-{r}")  # empty: this round's first run computes the reference
            recipe, first, G = new_run(args, weights, cache_dir, device)
            t_first, rows = timed_evaluation(first, G, device)
            _recipe, second_run, G2 = new_run(args, weights, cache_dir, device)
            t_cached, rows_cached = timed_evaluation(second_run, G2, device)
            t_later, _ = timed_evaluation(second_run, G2, device)
            for name, t in zip(times, (t_first, t_cached, t_later)):
                times[name].append(t)
            print(f"round {r + 1}: first {t_first:7.2f}s   cached {t_cached:7.2f}s   later {t_later:7.2f}s   "
                  f"first/cached {t_first / t_cached:5.2f}   first/later {t_first / t_later:5.2f}")
            assert [x["value"] for x in rows] == [x["value"] for x in rows_cached], "the cache changed a result"
    values = ", ".join(f"{x['metric']} {x['value']:.4g}" for x in rows)
    d = recipe.data
    print(f"\n{d.name} {d.image_size}x{d.image_size}, metrics {', '.join(recipe.eval.metrics)} ({how}), "
          f"num_real {args.num_real}, num_fake {args.num_fake}, {device}, {args.rounds} rounds; {values}")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"first {med['first']:.2f}s   cached {med['cached']:.2f}s   later {med['later']:.2f}s (medians)")
    for other in ("cached", "later"):
        ratios = [a / b for a, b in zip(times["first"], times[other])]
        print(f"speed ratio first/{other} (median of rounds): {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
