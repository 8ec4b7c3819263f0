"""What the training-health checks cost per step: gankit's loop with them and without.

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/health_cost.py
    .venv/bin/python benchmarks/health_cost.py --image-size 64 --batch-size 128 --device cuda

Two trainers of the same recipe (the tutorial's DCGAN on in-memory images)
run in alternating rounds (off, on, off, ...) so that a busy neighbour slows
both alike. "on" is the trainer as it ships: the non-finite guard before each
optimizer step (one fused isfinite over the loss statistics and gradient
norms) and the health monitor's per-step streak update. "off" removes both,
which is the loop as it was before them. Prints each round and the median
ratio on/off of the time per step: 1.00 means no measurable cost. Then, as a
measure a busy machine cannot blur, the checks' own time: the per-step health
work (two gradient norms, two finiteness checks, one streak update) repeated
on a real step's gradients and statistics, in microseconds and as a share of
the median step.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from train_step import bench_trainer  # benchmarks/ is on sys.path when a script in it runs


def make_trainer(images, args, out_dir, health: bool):
    t = bench_trainer(images, out_dir, args.device, args.batch_size, name="health_cost",
                      generator={"name": "dcgan", "nz": 100, "ngf": args.width},
                      discriminator={"name": "dcgan", "ndf": args.width})
    if not health:
        t.job.gan_step.guard = None  # the step then neither checks nor computes grad norms (except at log steps)
        t.job.monitor.observe = lambda stats: None
    return t


def train(trainer, steps: int) -> None:
    trainer.train_steps(steps)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()


def direct_cost(trainer, repeats: int = 200) -> float:
    """Seconds the per-step health work takes, averaged over ``repeats``."""
    from gankit.training.nonfinite import all_finite
    from gankit.training.step import gan_step, grad_norm

    t, job = trainer, trainer.job
    real = next(iter(job.feeder.loader))[0].to(t.device)
    p = job.players
    stats = gan_step(p.G, p.D, job.gan_step.loss, p.opt_g, p.opt_d, real, grad_norms=True)  # leaves G's grads
    d_values = {k: stats[k] for k in ("loss_d", "d_real", "d_fake", "grad_norm_d")}
    g_values = {k: stats[k] for k in ("loss_g", "d_fake_after", "grad_norm_g")}

    def work():
        grad_norm(t.D)
        all_finite(d_values)
        grad_norm(t.G)
        all_finite(g_values)
        job.monitor.observe(stats)

    for _ in range(10):
        work()
    t0 = time.perf_counter()
    for _ in range(repeats):
        work()
    if t.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--width", type=int, default=32, help="ngf = ndf (the tutorial: 64)")
    p.add_argument("--steps", type=int, default=20, help="timed iterations per round")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    torch.manual_seed(0)
    images = torch.rand(args.batch_size * 8, 3, args.image_size, args.image_size) * 2 - 1
    with tempfile.TemporaryDirectory() as out_dir:
        contenders = {"off": make_trainer(images, args, out_dir, False), "on": make_trainer(images, args, out_dir, True)}
        checks = direct_cost(make_trainer(images, args, out_dir, True))
        for t in contenders.values():
            train(t, 3)  # warm-up
        times = {name: [] for name in contenders}
        for r in range(args.rounds):
            for name, t in contenders.items():
                t0 = time.perf_counter()
                train(t, args.steps)
                times[name].append((time.perf_counter() - t0) / args.steps)
            print(f"round {r + 1}: off {times['off'][-1] * 1e3:.2f} ms/step  on {times['on'][-1] * 1e3:.2f} ms/step  "
                  f"ratio {times['on'][-1] / times['off'][-1]:.3f}")
    ratios = [a / b for a, b in zip(times["on"], times["off"])]
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    print(f"\n{args.image_size}x{args.image_size}, batch {args.batch_size}, width {args.width}, {args.device}, "
          f"{args.steps} steps x {args.rounds} rounds")
    print(f"health off {off * 1e3:.2f} ms/step, on {on * 1e3:.2f} ms/step ({(on - off) * 1e6:+.0f} us/step)")
    print(f"cost ratio on/off (median of rounds): {statistics.median(ratios):.3f}")
    print(f"the checks alone: {checks * 1e6:.0f} us/step = {checks / off:.2%} of a step")


if __name__ == "__main__":
    main()
