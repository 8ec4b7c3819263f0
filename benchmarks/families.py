"""Training steps of the StyleGAN2-ADA and R3GAN families, timed: on the CPU at a small batch, on a GPU
at the papers' batches (through benchmarks/gpu.py --model stylegan2|r3gan).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/families.py                 # CPU table
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/families.py --batch-size 8 --steps 3

Each step is gankit's own (:class:`gankit.training.step.GANStep`) with the
family's recipe parts: StyleGAN2-ADA's `cifar` configuration (non-saturating
loss, lazy R1 every 16, ADA), R3GAN's CIFAR-10 preset (RpGAN + R1 + R2, the
ADA pipeline at p 0.2) and the tiny R3GAN of recipes/r3gan_tiny.yaml. It
needs torch and this repository only (no install): the plugins are put on
sys.path from plugins/.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "plugins" / "stylegan2", REPO / "plugins" / "r3gan"):
    sys.path.insert(0, str(path))

# name -> (G kwargs, D kwargs, image size, loss, regularisers, ADA kwargs); the recipes' settings
CONFIGS = {
    "stylegan2_cifar": (
        dict(nz=512, w_dim=512, mapping_layers=2, channel_base=32768, channel_max=512, num_fp16_res=4,
             conv_clamp=256, style_mixing_prob=0.0),
        dict(architecture="orig", channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256,
             mbstd_group_size=32),
        32, "nonsaturating", [("r1", dict(gamma=0.01, every=16))], dict(target=0.6)),
    "r3gan_cifar": (dict(nz=64), dict(), 32, "relativistic",
                    [("r1", dict(gamma=0.05)), ("r2", dict(gamma=0.05))], dict(target=None, p=0.2)),
    "r3gan_tiny": (dict(nz=16, width=16, blocks=1), dict(width=16, blocks=1), 16, "relativistic",
                   [("r1", dict(gamma=0.05)), ("r2", dict(gamma=0.05))], dict(target=None, p=0.2)),
}


def build(name: str, batch: int, device: torch.device, *, bf16: bool = False, channels_last: bool = False,
          compiled: bool = False, layer_precision: bool = True):
    """(the GAN step, a real batch) for configuration ``name``.

    ``layer_precision``: the family's own reduced-precision layers (StyleGAN2's
    fp16 in the top 4 resolutions, R3GAN's bf16 stages) on CUDA; off: float32.
    """
    from gankit.augment.adaptive import AdaptiveAugment
    from gankit.losses import NonSaturatingLoss, RelativisticLoss
    from gankit.regularizers import R1Penalty, R2Penalty
    from gankit.training.step import GANStep
    from gankit_r3gan.models import R3GANDiscriminator, R3GANGenerator
    from gankit_stylegan2.discriminator import StyleGAN2Discriminator
    from gankit_stylegan2.generator import StyleGAN2Generator

    g_kwargs, d_kwargs, size, loss, regs, ada = CONFIGS[name]
    torch.manual_seed(0)
    family = (StyleGAN2Generator, StyleGAN2Discriminator) if name.startswith("stylegan2") else \
        (R3GANGenerator, R3GANDiscriminator)
    if not layer_precision:
        off = {"num_fp16_res": 0} if name.startswith("stylegan2") else {"fp16_stages": []}
        g_kwargs, d_kwargs = {**g_kwargs, **off}, {**d_kwargs, **off}
    G = family[0](image_size=size, channels=3, **g_kwargs).to(device)
    D = family[1](image_size=size, channels=3, **d_kwargs).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G, D = G.to(memory_format=fmt), D.to(memory_format=fmt)
    lr, betas = (0.0025, (0.0, 0.99)) if name.startswith("stylegan2") else (2e-4, (0.0, 0.9))
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas, eps=1e-8)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas, eps=1e-8)
    made = {"r1": R1Penalty, "r2": R2Penalty}
    regularizers = [made[n](**kw) for n, kw in regs]
    loss_fn = NonSaturatingLoss() if loss == "nonsaturating" else RelativisticLoss()
    if compiled:
        G.compile()
        D.compile()
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else None
    step = GANStep(G, D, loss_fn, opt_g, opt_d, regularizers=regularizers,
                   augment=AdaptiveAugment("bgc", **ada), aug_generator=torch.Generator(device).manual_seed(1),
                   channels_last=channels_last, **({"autocast": autocast} if autocast else {}))
    real = (torch.rand(batch, 3, size, size, device=device) * 2 - 1).contiguous(memory_format=fmt)
    return step, real


def time_steps(step, real, steps: int, device: torch.device, start: int = 0) -> float:
    """Seconds for ``steps`` GAN steps (device drained before and after)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for i in range(steps):
        step([(real, None)], start + i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def count(module: torch.nn.Module) -> str:
    """The parameter count, readable: 19.9M, 24.1k."""
    n = sum(p.numel() for p in module.parameters())
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--steps", type=int, default=2, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--configs", default=",".join(CONFIGS))
    args = p.parse_args()
    device = torch.device("cpu")
    print(f"CPU ({torch.get_num_threads()} threads), torch {torch.__version__}, batch {args.batch_size}, "
          f"{args.steps} steps x {args.rounds} rounds (the step at 0 pays R1's lazy step: steps 1.. are timed)")
    print(f"| {'configuration':<16} | {'params G / D':>16} | {'s / step (median)':>17} | {'img/s':>7} |")
    print(f"|{'-' * 18}|{'-' * 18}|{'-' * 19}|{'-' * 9}|")
    for name in args.configs.split(","):
        step, real = build(name, args.batch_size, device)
        step([(real, None)], 0)  # warm-up (and the lazy R1 step at 0)
        times = [time_steps(step, real, args.steps, device, start=1 + r * args.steps) / args.steps
                 for r in range(args.rounds)]
        params = f"{count(step.G)} / {count(step.D)}"
        s = statistics.median(times)
        print(f"| {name:<16} | {params:>16} | {s:>17.3f} | {args.batch_size / s:>7.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())


# The GPU contenders of benchmarks/gpu.py --model: (label, build keyword arguments)
GPU_CONTENDERS = [
    ("fp32", dict(layer_precision=False)),
    ("family precision", dict()),  # StyleGAN2: fp16 top-4 resolutions (official); R3GAN: bf16 stages (official)
    ("bf16 autocast", dict(layer_precision=False, bf16=True)),
    ("bf16 + channels_last", dict(layer_precision=False, bf16=True, channels_last=True)),
    ("bf16 + cl + compile", dict(layer_precision=False, bf16=True, channels_last=True, compiled=True)),
]
PAPER_BATCH = {"stylegan2_cifar": 64, "r3gan_cifar": 512}
# What the papers' runs are measured against: StyleGAN2-ADA's README gives sec/kimg for 128x128 and up
# (1 V100: 12.8-13.7 at 128x128, the closest to CIFAR's 32x32 it lists); R3GAN's CIFAR-10 run is 250 Mimg.
REFERENCE = {"stylegan2_cifar": "official README: 12.8-13.7 sec/kimg on 1 V100 at 128x128 (no 32x32 row)",
             "r3gan_cifar": "paper: ~250 Mimg, ~768 L40 GPU-hours"}


def gpu(name: str, device: torch.device, steps: int, rounds: int, warmup: int, compile_: bool,
        batch: int | None = None) -> int:
    """img/s of each contender at the paper's batch (or ``batch``); the projected time of the paper's run."""
    batch = batch or PAPER_BATCH[name]
    rates: dict[str, list[float]] = {}
    built = []
    for label, kw in GPU_CONTENDERS:
        if kw.get("compiled") and not compile_:
            continue
        try:
            step, real = build(name, batch, device, **kw)
            time_steps(step, real, warmup, device)
        except Exception as exc:  # a contender that cannot run here (compile without a toolchain): say so
            print(f"{label}: left out ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})", flush=True)
            continue
        built.append((label, step, real))
        rates[label] = []
    for r in range(rounds):
        for label, step, real in built:
            rates[label].append(steps * batch / time_steps(step, real, steps, device, start=warmup + r * steps))
        print(f"round {r + 1}: " + "   ".join(f"{n} {v[-1]:,.0f} img/s" for n, v in rates.items()), flush=True)
    print(f"\n{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, {name}, batch {batch}")
    print(f"| {'contender':<22} | {'img/s':>9} | {'sec/kimg':>8} | {'vs fp32':>7} |")
    base = statistics.median(rates["fp32"]) if rates.get("fp32") else None
    for label, v in rates.items():
        m = statistics.median(v)
        print(f"| {label:<22} | {m:>9,.0f} | {1000 / m:>8.2f} | {m / base if base else float('nan'):>7.2f} |")
    best = max(statistics.median(v) for v in rates.values())
    if name == "r3gan_cifar":
        print(f"projected: 250 Mimg at {best:,.0f} img/s = {250e6 / best / 3600:.1f} hours on this GPU")
    print(f"reference: {REFERENCE[name]}")
    return 0
