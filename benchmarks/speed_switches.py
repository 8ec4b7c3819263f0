"""What each speed switch of the recipe does to gankit's training step: images/s against fp32.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/speed_switches.py
    .venv/bin/python benchmarks/speed_switches.py --device cuda --batch-size 128 --steps 20 --rounds 5

Contenders, each gankit's Trainer on the tutorial's DCGAN (plugins/dcgan)
with in-memory images, 64x64: fp32 (the baseline, every switch off),
``train.precision: bf16``, ``train.precision: fp16`` (with its gradient
scalers), ``train.channels_last: true`` and ``train.compile: true`` (inductor;
its compilation happens in the warm-up and is reported apart, left out with
--no-compile or when it fails; a fresh inductor cache unless
$TORCHINDUCTOR_CACHE_DIR is set, so it is a first run's cost). Rounds
alternate the contenders so that a busy neighbour slows all alike; in each
round each contender trains --steps steps, and more until --seconds have
passed, after its warm-up. Prints each round, then the median images/s and
the median of the per-round ratios to fp32 (above 1.0 the switch helps on
this machine).

On a CPU without bf16/fp16 arithmetic (AVX2, say) a bf16 or fp16 step takes
tens of seconds: those two are not warmed up there (their first-call costs
vanish beside it), which keeps the default run near 4 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch
from train_step import bench_trainer  # benchmarks/ is on sys.path when a script in it runs

CONTENDERS = {  # name -> the recipe's train.* switches; the fast ones next to each other in a round
    "fp32": {},
    "channels_last": {"channels_last": True},
    "compile": {"compile": True},
    "bf16": {"precision": "bf16"},
    "fp16": {"precision": "fp16"},
}


def make_trainer(images, args, out_dir, switches: dict):
    return bench_trainer(images, out_dir, args.device, args.batch_size, name="speed_switches", **switches)


def train(trainer, steps: int, seconds: float = 0.0) -> tuple[int, float]:
    """At least ``steps`` training steps and ``seconds`` seconds: (steps done, seconds), the device drained."""
    done, t0 = 0, time.perf_counter()
    while done < steps or time.perf_counter() - t0 < seconds:
        trainer.train_steps(1)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize(trainer.device)
        done += 1
    return done, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=1, help="timed steps per contender per round, at least")
    p.add_argument("--seconds", type=float, default=4.0, help="and steps until this many seconds have passed")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (compilation happens here)")
    p.add_argument("--contenders", default=",".join(CONTENDERS), help="comma-separated subset (fp32 always runs)")
    p.add_argument("--no-compile", action="store_true", help="leave out the torch.compile contender")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    torch.manual_seed(0)
    images = torch.rand(args.batch_size * 8, 3, args.image_size, args.image_size) * 2 - 1
    chosen = {"fp32", *args.contenders.split(",")} - ({"compile"} if args.no_compile else set())
    names = [n for n in CONTENDERS if n in chosen]
    with tempfile.TemporaryDirectory() as out_dir:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(out_dir, "inductor"))
        trainers = {}
        for name in names:
            t0 = time.perf_counter()
            trainer = make_trainer(images, args, out_dir, CONTENDERS[name])
            slow = trainer.device.type == "cpu" and name in ("bf16", "fp16")  # see the docstring
            try:
                train(trainer, 0 if slow else args.warmup)
            except Exception as exc:  # compiling without a working toolchain, say: report and go on without it
                if name != "compile":
                    raise
                print(f"compile: left out, it failed ({str(exc).splitlines()[0][:200]})", flush=True)
                continue
            trainers[name] = trainer
            print(f"{name}: set-up and warm-up ({0 if slow else args.warmup} steps) {time.perf_counter() - t0:.1f}s",
                  flush=True)
        rates: dict[str, list[float]] = {name: [] for name in trainers}
        for r in range(args.rounds):
            for name, trainer in trainers.items():
                steps, seconds = train(trainer, args.steps, args.seconds)
                rates[name].append(steps * args.batch_size / seconds)
            print(f"round {r + 1}: " + "  ".join(f"{n} {v[-1]:.1f}" for n, v in rates.items()) + " img/s", flush=True)
    device = args.device if args.device != "cuda" else torch.cuda.get_device_name()
    print(f"\nDCGAN {args.image_size}x{args.image_size}, batch {args.batch_size}, {device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.rounds} rounds of >= {args.steps} steps and {args.seconds:g}s")
    base = rates["fp32"]
    for name, v in rates.items():
        ratio = statistics.median(a / b for a, b in zip(v, base))
        print(f"{name:<14} {statistics.median(v):8.1f} img/s   vs fp32 {ratio:.2f}")


if __name__ == "__main__":
    main()
