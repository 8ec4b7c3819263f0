"""The tutorial's DCGAN at 64x64, batch 128, on a GPU: fp32 as the tutorial trains it vs bf16 autocast
+ channels_last + device-resident data (+ torch.compile), images/s. Goal: >= 15,000 images/s.

    python benchmarks/gpu.py
    python benchmarks/gpu.py --steps 50 --rounds 5 --no-compile
    python benchmarks/gpu.py --device cpu --steps 2 --rounds 1 --no-compile   # only checks the script runs
    python benchmarks/gpu.py --model stylegan2     # StyleGAN2-ADA's cifar configuration, batch 64
    python benchmarks/gpu.py --model r3gan         # R3GAN's CIFAR-10 preset, batch 512, and the run's projected time

Self-contained: plain PyTorch and the DCGAN models of plugins/dcgan (the
tutorial's networks, D ending in a logit), loaded from their file, so it runs
on a bare GPU machine with only torch installed and this repository. The data
is random (the speed of a step does not depend on pixel values):

- fp32: a float batch in (pageable) host memory copied each step, as the
  tutorial's DataLoader hands it over; default cuDNN settings;
- bf16+cl+resident: uint8 images on the GPU, a shuffled batch gathered and
  converted there, bf16 autocast, channels_last models and batches, cuDNN autotuning;
- ... +compile: the same with torch.compile'd G and D (left out when compiling fails).

Each step is the tutorial's: D on real and fake (BCE), then G. Rounds
alternate the contenders; each times --steps steps after a warm-up, ending in
a device synchronisation. Prints each round, then a table of median images/s
and the ratio to fp32.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

MODELS = Path(__file__).resolve().parents[1] / "plugins" / "dcgan" / "gankit_dcgan" / "models.py"
GOAL = 15_000


def load_models():
    """gankit_dcgan/models.py by path: its package __init__ imports gankit, which a bare machine lacks."""
    spec = importlib.util.spec_from_file_location("dcgan_models", MODELS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DCGANGenerator, module.DCGANDiscriminator


class Contender:
    def __init__(self, name: str, device: torch.device, batch: int, size: int, *, bf16: bool, channels_last: bool,
                 resident: bool, compiled: bool, autotune: bool, pool: int):
        Generator, Discriminator = load_models()
        self.name, self.device, self.batch, self.bf16, self.autotune = name, device, batch, bf16, autotune
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        torch.manual_seed(0)
        self.G = Generator(image_size=size).to(device, memory_format=self.memory_format)
        self.D = Discriminator(image_size=size).to(device, memory_format=self.memory_format)
        self.nz = self.G.nz
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.g, self.d = (torch.compile(self.G), torch.compile(self.D)) if compiled else (self.G, self.D)
        self.resident = resident
        images = torch.randint(0, 256, (pool, 3, size, size), dtype=torch.uint8)
        if resident:
            self.images = images.to(device)
            self.order = torch.empty(0, dtype=torch.int64, device=device)
        else:  # what the tutorial's DataLoader yields: float batches in host memory
            self.host_batches = [b.float().div(127.5).sub(1) for b in images.split(batch) if len(b) == batch]
        self.i = 0
        self.ones = torch.ones(batch, device=device)
        self.zeros = torch.zeros(batch, device=device)

    def real_batch(self) -> torch.Tensor:
        if not self.resident:
            self.i = (self.i + 1) % len(self.host_batches)
            return self.host_batches[self.i].to(self.device)
        if self.i + self.batch > self.order.numel():  # a new epoch: a new permutation, drawn on the device
            self.order, self.i = torch.randperm(self.images.shape[0], device=self.device), 0
        idx = self.order[self.i : self.i + self.batch]
        self.i += self.batch
        real = self.images.index_select(0, idx).float().div_(127.5).sub_(1)
        return real.contiguous(memory_format=self.memory_format)

    def step(self) -> None:
        real = self.real_batch()
        z = torch.randn(self.batch, self.nz, device=self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            fake = self.g(z)
            loss_d = (F.binary_cross_entropy_with_logits(self.d(real), self.ones)
                      + F.binary_cross_entropy_with_logits(self.d(fake.detach()), self.zeros))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss_g = F.binary_cross_entropy_with_logits(self.d(fake), self.ones)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()

    def run(self, steps: int) -> float:
        """Seconds for ``steps`` steps, the device drained before and after."""
        torch.backends.cudnn.benchmark = self.autotune
        sync(self.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        sync(self.device)
        return time.perf_counter() - t0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=None, help="default: 128 (DCGAN), the paper's (families)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=50, help="timed steps per contender per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (compilation, autotuning)")
    p.add_argument("--no-compile", action="store_true", help="leave out the torch.compile contender")
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (only to check that the script runs)")
    p.add_argument("--model", choices=["dcgan", "stylegan2", "r3gan"], default="dcgan",
                   help="stylegan2 / r3gan: the family's CIFAR-10 configuration through gankit's step "
                        "(benchmarks/families.py): fp32, the family's own precision, bf16, channels_last, compile")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"benchmarks/gpu.py needs a CUDA GPU, and torch {torch.__version__} sees none here "
              f"(torch.version.cuda: {torch.version.cuda}). Run it on a GPU machine; "
              "--device cpu only checks that the script runs.", file=sys.stderr)
        return 2
    if args.model != "dcgan":
        import families

        return families.gpu(f"{args.model}_cifar", device, args.steps, args.rounds, args.warmup, not args.no_compile,
                            args.batch_size)
    args.batch_size = args.batch_size or 128
    pool = args.batch_size * 32  # images in the resident set: 32 batches an epoch
    common = dict(batch=args.batch_size, size=args.image_size, pool=pool)
    contenders = [
        Contender("fp32", device, **common, bf16=False, channels_last=False, resident=False, compiled=False,
                  autotune=False),
        Contender("bf16+cl+resident", device, **common, bf16=True, channels_last=True, resident=True, compiled=False,
                  autotune=True),
    ]
    if not args.no_compile:
        contenders.append(Contender("bf16+cl+resident+compile", device, **common, bf16=True, channels_last=True,
                                    resident=True, compiled=True, autotune=True))
    for c in list(contenders):
        t0 = time.perf_counter()
        try:
            c.run(args.warmup)
        except Exception as exc:  # torch.compile without a working toolchain, say: report and go on without it
            if not c.name.endswith("compile"):
                raise
            print(f"{c.name}: left out, compiling failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
            contenders.remove(c)
            continue
        print(f"{c.name}: warm-up {args.warmup} steps in {time.perf_counter() - t0:.1f}s", flush=True)
    rates: dict[str, list[float]] = {c.name: [] for c in contenders}
    for r in range(args.rounds):
        for c in contenders:
            rates[c.name].append(args.steps * args.batch_size / c.run(args.steps))
        print(f"round {r + 1}: " + "   ".join(f"{n} {v[-1]:,.0f} img/s" for n, v in rates.items()), flush=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\n{name}, torch {torch.__version__}, DCGAN {args.image_size}x{args.image_size}, batch {args.batch_size}, "
          f"{args.steps} steps x {args.rounds} rounds; cuDNN TF32 {torch.backends.cudnn.allow_tf32}, "
          f"matmul TF32 {torch.backends.cuda.matmul.allow_tf32}")
    base = rates["fp32"]
    print(f"| {'contender':<26} | {'img/s (median)':>14} | {'vs fp32 (median of rounds)':>26} |")
    print(f"|{'-' * 28}|{'-' * 16}|{'-' * 28}|")
    for n, v in rates.items():
        ratio = statistics.median(a / b for a, b in zip(v, base))
        print(f"| {n:<26} | {statistics.median(v):>14,.0f} | {ratio:>26.2f} |")
    best_name, best = max(((n, statistics.median(v)) for n, v in rates.items()), key=lambda x: x[1])
    verdict = "met" if best >= GOAL else "not met"
    print(f"goal >= {GOAL:,} img/s: {verdict} (best: {best_name}, {best:,.0f} img/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
