"""How long `gankit compare` takes over 1,000 run directories (a sweep of 10 settings × 100 seeds).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/compare_scale.py [--runs 1000] [--rounds 3] [--keep DIR]

Writes synthetic run directories shaped like the quickstart's: the resolved
recipe with gankit's provenance (recipe.yaml), a metrics.jsonl of 100 train
rows, 4 evaluations of SWD and FID with full provenance and an end row, a
sample grid and a checkpoint-sized placeholder (never read), under one sweep
directory with its sweep.yaml. Then times, as a user runs them (a fresh
process each, imports included), `gankit compare SWEEP` (grouped by the grid:
10 groups, intervals, the band plot), `gankit compare SWEEP --baseline ...`,
`gankit compare SWEEP --group-by none` (one row and one line per run) and
`gankit runs SWEEP`, and `gankit compare --help` for the cost of starting
gankit at all. Prints each round and the median of each; the last line is
the grouped compare's median. Target: under 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LOSSES = ("bce", "hinge")
LRS = ("1e-4", "2e-4", "3e-4", "4e-4", "5e-4")


def synthesize(root: Path, n_runs: int) -> Path:
    from gankit.recipe import load_recipe, resolved
    from gankit.runs.sweep import Sweep, make_jobs, write_sweep

    base = resolved(load_recipe(REPO / "recipes" / "quickstart.yaml"))
    grid = {"loss.name": list(LOSSES), "optim.g.lr": list(LRS)}
    seeds = list(range(max(1, n_runs // (len(LOSSES) * len(LRS)))))
    sweep = Sweep(root, "scale", str(REPO / "recipes" / "quickstart.yaml"), "", ["train.steps=1000"], grid, seeds,
                  str(REPO), make_jobs(grid, seeds))
    png = next((REPO / "tests").glob("**/*.png"), None)
    reference = {"dataset": "digits", "root": None, "split": None,
                 "transform": {"image_size": 32, "channels": 1}, "num_images": 1797}
    prov = {"feature_extractor": "inception-v3-compat", "weights_sha256": "6726825d" * 8, "input_resolution": 299,
            "resize": "tf1 bilinear", "num_real": 1797, "num_fake": 1000, "reference": reference,
            "generator": "raw", "quantisation": "uint8", "seed": 0, "batch_size": 64, "gankit_version": "0.1.0",
            "reference_stats": "cached", "cache_file": "/cache/x.npz", "notes": []}
    for i, job in enumerate(sweep.jobs):
        loss, lr = job.settings[0].split("=")[1], float(job.settings[1].split("=")[1])
        run_id = f"20261201-{i:06d}-beef"
        run_dir = sweep.out_dir(job) / "quickstart" / run_id
        (run_dir / "samples").mkdir(parents=True)
        (run_dir / "checkpoints").mkdir()
        recipe = json.loads(json.dumps(base))
        recipe.update(seed=job.seed, sweep="scale")
        recipe["loss"] = {"name": loss}
        recipe["optim"]["g"]["lr"] = lr
        recipe["gankit"] = {"version": "0.1.0", "run_id": run_id, "overrides": job.settings, "torch": "2.14.1"}
        (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
        with open(run_dir / "metrics.jsonl", "w", encoding="utf-8") as f:
            for step in range(10, 1001, 10):
                f.write(json.dumps({"kind": "train", "step": step, "time": 1e9 + step, "loss_d": 1.0 + 0.001 * i,
                                    "loss_g": 2.0 - step / 1e4, "d_real": 0.6, "d_fake": 0.4, "grad_norm_d": 3.0,
                                    "grad_norm_g": 5.0, "epoch": step // 56, "lr_g": lr, "lr_d": 2e-4,
                                    "img_per_s": 300.0 + i % 7}) + "\n")
                if step % 250 == 0:
                    for metric, value in (("swd", 80 - step / 50 + i % 5), ("fid", 120 - step / 20 + i % 3)):
                        f.write(json.dumps({"kind": "eval", "step": step, "time": 1e9, "metric": metric,
                                            "value": value, "std": None, **prov, "eval_seconds": 2.0}) + "\n")
            f.write(json.dumps({"kind": "end", "status": "finished", "time": 1e9}) + "\n")
        if png is not None:
            shutil.copyfile(png, run_dir / "samples" / "step_0001000.png")
        (run_dir / "checkpoints" / "last.pt").write_bytes(b"never read" * 100)
        job.status, job.run_dir, job.exit_code = "finished", str(run_dir.relative_to(root)), 0
    write_sweep(sweep)
    return root


def timed(args: list[str]) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gankit", *args], cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"gankit {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", metavar="DIR", help="write the synthetic sweep here and keep it")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gankit-scale-")) / "scale"
    t0 = time.perf_counter()
    synthesize(root, args.runs)
    print(f"wrote {args.runs} run directories in {time.perf_counter() - t0:.1f} s: {root}")
    out = root.parent / "scale.png"
    cases = {
        "start-up (compare --help)": ["compare", "--help"],
        "compare (grouped)": ["compare", str(root), "--out", str(out)],
        "compare --baseline": ["compare", str(root), "--baseline", "loss.name=bce,optim.g.lr=2e-4", "--out", str(out)],
        "compare --group-by none": ["compare", str(root), "--group-by", "none", "--out", str(out)],
        "runs": ["runs", str(root)],
    }
    results: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(args.rounds):
        for name, case in cases.items():
            results[name].append(timed(case))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in results.items()))
    for name, values in results.items():
        print(f"median {name}: {statistics.median(values):.2f} s")
    if not args.keep:
        shutil.rmtree(root.parent)
    print(f"gankit compare on {args.runs} runs (grouped): {statistics.median(results['compare (grouped)']):.2f} s "
          "(target < 10 s)")


if __name__ == "__main__":
    main()
