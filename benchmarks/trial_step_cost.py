"""What checking contracts costs: the trial step before a run, and the return checks on every training step.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/trial_step_cost.py [--rounds 3] [RECIPE ...]

1. The trial step (``gankit.training.assemble.trial_step``): for each recipe
   (default: the quickstart, stylegan2_tiny, r3gan_tiny), a fresh process per
   round times what ``gankit validate`` does, imports included: load the
   recipe, preflight, then the trial step. Printed: validate's time before
   (without the trial) and now, and the trial step once torch.optim has been
   used in the process (what ``gankit run`` adds: a run builds its optimizers
   anyway, and their first use imports torch._dynamo, which the trial step
   otherwise pays first).
2. The return checks (``gankit.recipe.checked``) on every training step: the
   checks alone on a real BCE + R1 step's returns (two loss calls and one
   penalty), in microseconds, repeated so a busy machine cannot blur them,
   and as a share of that step's time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ONE = r'''
import sys, time
t0 = time.perf_counter()
from gankit.recipe import load_recipe
from gankit.recipe.preflight import preflight
from gankit.training.assemble import trial_step
r = load_recipe(sys.argv[1]); preflight(r, sys.argv[1]); t1 = time.perf_counter()
trial_step(r); t2 = time.perf_counter()
trial_step(r); t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
'''


def trial_cost(recipe: str) -> tuple[float, float, float]:
    out = subprocess.run([sys.executable, "-c", ONE, recipe], cwd=REPO, capture_output=True, text=True, check=True)
    before, first, again = (float(x) for x in out.stdout.split())
    return before, before + first, again


def check_cost(repeats: int = 2000) -> tuple[float, float]:
    """Seconds the return checks take per step, and one step's seconds (tutorial DCGAN 32x32, batch 32, R1)."""
    import torch

    from gankit.recipe import validate
    from gankit.recipe.build import build_discriminator, build_generator, build_loss, build_regularizers
    from gankit.recipe.checked import _problem
    from gankit.training.step import GANStep

    r = validate({"name": "b", "data": {"name": "digits", "image_size": 32, "channels": 3, "batch_size": 32},
                  "generator": {"name": "dcgan", "ngf": 32}, "discriminator": {"name": "dcgan", "ndf": 32},
                  "loss": {"name": "bce"}, "regularizers": [{"name": "r1", "gamma": 1.0}], "train": {"steps": 1}})
    torch.manual_seed(0)
    G, D, loss = build_generator(r), build_discriminator(r), build_loss(r)
    step = GANStep(G, D, loss, torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters()),
                   regularizers=build_regularizers(r))
    real = torch.rand(32, 3, 32, 32) * 2 - 1
    for _ in range(2):
        step([(real, None)], 0)
    t0 = time.perf_counter()
    for _ in range(5):
        step([(real, None)], 0)
    step_s = (time.perf_counter() - t0) / 5
    fake = G(torch.randn(32, G.nz)).detach()
    d_out, g_out = loss.d_loss(D, real, fake), loss.g_loss(D, fake)
    p_out = step.d_regs[0].penalty(D, real, fake, 0)
    t0 = time.perf_counter()
    for _ in range(repeats):
        _problem(d_out, "losses", False), _problem(g_out, "losses", False), _problem(p_out, "regularizers", False)
    return (time.perf_counter() - t0) / repeats, step_s


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipes", nargs="*", default=["recipes/quickstart.yaml", "recipes/stylegan2_tiny.yaml",
                                                    "recipes/r3gan_tiny.yaml"])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    ratios = []
    for recipe in args.recipes:
        rows = [trial_cost(recipe) for _ in range(args.rounds)]
        for before, now, again in rows:
            print(f"{recipe}: validate {before:.2f} s before, {now:.2f} s now ({now / before:.2f}x); "
                  f"the trial step once torch.optim was used: {again:.3f} s")
        ratio = statistics.median(now / before for before, now, _ in rows)
        ratios.append(ratio)
        print(f"{recipe}: median validate now/before {ratio:.2f}x, trial after optimizer import "
              f"{statistics.median(a for *_, a in rows):.3f} s")
    checks, step_s = check_cost()
    print(f"return checks: {checks * 1e6:.1f} us per step = {checks / step_s:.4%} of a {step_s * 1e3:.0f} ms step "
          "(DCGAN 32x32, batch 32, BCE + R1, CPU)")


if __name__ == "__main__":
    main()
