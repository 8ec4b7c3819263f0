"""What gankit's evaluation pays on the CPU for agreeing with torch-fidelity to 1e-5, in one run.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/inception_layout.py --rounds 3

- Inception per image: torch-fidelity's InceptionV3 (the tests' stand-in
  weights: real architecture and cost) on uint8 images at 299x299, batches
  of 50, in NCHW (what gankit runs: torch-fidelity's own layout) vs
  channels_last (oneDNN's faster NHWC path, whose features differ by ~1e-6,
  which a peaked Inception Score amplifies past 1e-5), alternating round by
  round.
- The fixed cost of one FID: torchmetrics' ``FrechetInceptionDistance``
  compute on 2048-d statistics (float64, its eigenvalue form of the matrix
  square root), timed once per round.

Prints every round and the median ratio NCHW / channels_last.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def inception(weights: Path, channels_last: bool) -> torch.nn.Module:
    from gankit.eval.extractors import inception_module
    from gankit.eval.weights import WeightsFile, load_state_dict

    module = inception_module(load_state_dict(WeightsFile(weights, "", "benchmark"))).eval()
    return module.to(memory_format=torch.channels_last) if channels_last else module


def seconds_per_image(module: torch.nn.Module, images: torch.Tensor, channels_last: bool, batch: int) -> float:
    t0 = time.perf_counter()
    with torch.no_grad():
        for x in images.split(batch):
            module(x.contiguous(memory_format=torch.channels_last) if channels_last else x)
    return (time.perf_counter() - t0) / len(images)


def fid_compute_seconds() -> float:
    from torchmetrics.image.fid import _compute_fid

    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(300, 2048, generator=g).double(), torch.randn(100, 2048, generator=g).double()
    t0 = time.perf_counter()
    _compute_fid(real.mean(0), real.T.cov(), fake.mean(0), fake.T.cov())
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    from eval_fixtures import make_inception_weights

    images = torch.randint(0, 256, (args.images, 3, 299, 299), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    times: dict[str, list[float]] = {"nchw": [], "channels_last": [], "fid": []}
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(make_inception_weights(Path(tmp) / "inception-standin.pth"))
        modules = {"nchw": inception(weights, False), "channels_last": inception(weights, True)}
        for r in range(args.rounds):
            order = ["nchw", "channels_last"] if r % 2 == 0 else ["channels_last", "nchw"]
            for name in order:
                times[name].append(seconds_per_image(modules[name], images, name == "channels_last",
                                                     args.batch_size))
            times["fid"].append(fid_compute_seconds())
            print(f"round {r + 1}: NCHW {times['nchw'][-1] * 1e3:6.1f} ms/image   channels_last "
                  f"{times['channels_last'][-1] * 1e3:6.1f} ms/image   FID compute {times['fid'][-1]:.2f} s")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{args.images} images, batch {args.batch_size}, {args.rounds} rounds, {torch.get_num_threads()} threads")
    print(f"NCHW {med['nchw'] * 1e3:.1f} ms/image, channels_last {med['channels_last'] * 1e3:.1f} ms/image, "
          f"one FID compute {med['fid']:.2f} s (medians)")
    ratios = [a / b for a, b in zip(times["nchw"], times["channels_last"])]
    print(f"cost ratio NCHW/channels_last (median of rounds): {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
