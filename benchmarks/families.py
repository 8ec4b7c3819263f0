"""Training steps of the StyleGAN2-ADA and R3GAN families, timed: gankit's against the official code's on the
CPU, same configuration and batch; on a GPU at the papers' batches (through benchmarks/gpu.py --model ...).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/families.py                           # gankit's step only
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/families.py --official /tmp/official  # vs the official

Each gankit step is the shipped recipe's (``GANStep.from_recipe``: the
family's loss, penalties, augmentation, phase order, fresh latents, G's own
real batch), built from recipes/stylegan2_cifar10.yaml, r3gan_cifar10.yaml
and, for a small model, r3gan_tiny.yaml (in RGB here, as the official R3GAN
networks are). The official step is the per-iteration body of the official
``training/training_loop.py`` (its batch fetch apart: both sides get the
same ready batch), driving the official networks, loss, augmentation pipe
and Adam with the same configuration: the latents of every phase, the
phases with their intervals, the rounds, ``nan_to_num`` (StyleGAN2-ADA) or
the flattened gradients (R3GAN), the optimizer steps, the EMA, ADA's
statistics. Both run float32 (the official reduced-precision layers are
CUDA-only in gankit; on the CPU the official code would run them in
float16/bfloat16 emulation, so they are off on both sides), with the
augmentation probability held at 0.2 (p = 0 is free in gankit and not in the
official code; comparing there would flatter gankit). Rounds alternate
between the two, the median of each is reported, and the ratio is official
seconds per step over gankit's (above 1: gankit is faster).

``--official DIR``: a directory with the extracted official checkouts,
``DIR/stylegan2-ada-pytorch`` (NVlabs, d72cc7d) and ``DIR/R3GAN`` (brownvc,
19a7ddf), e.g. ``git archive`` of each; keep them outside this repository
(never commit them). They run unmodified on the CPU with torch 2.14 except
for R3GAN's import of ``pkg_resources`` (gone from recent setuptools), for
which this script supplies ``parse_version`` from ``packaging``. It needs
torch and this repository's installed environment (.venv).
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

# name -> (recipe, its overrides for the CPU comparison, the official checkout's folder)
CONFIGS = {
    "stylegan2_cifar": ("stylegan2_cifar10", ["augment.p=0.2"], "stylegan2-ada-pytorch"),
    "r3gan_cifar": ("r3gan_cifar10", ["augment.p=0.2"], "R3GAN"),
    "r3gan_tiny": ("r3gan_tiny", ["augment.p=0.2", "data.channels=3"], "R3GAN"),
}
OFFICIAL_PACKAGES = ("training", "torch_utils", "dnnlib", "R3GAN", "legacy", "pkg_resources")


def recipe_of(name: str, batch: int, extra: list[str] = ()):
    """The shipped recipe of configuration ``name`` at ``batch``, on the CPU, evaluation off, p held."""
    from gankit.recipe import load_recipe

    base, overrides, _ = CONFIGS[name]
    recipe = load_recipe(REPO / "recipes" / f"{base}.yaml",
                         [f"data.batch_size={batch}", "device=cpu", "eval.metrics=[]", "data.mirror=false",
                          *overrides, *extra])
    # p held (its schedule would start it at 0, where gankit skips the pipe and the official code does not).
    recipe.schedules = [s for s in recipe.schedules if s.targets != ["augment.p"]]
    return recipe


def build(name: str, batch: int, device: torch.device, *, bf16: bool = False, channels_last: bool = False,
          compiled: bool = False, layer_precision: bool = True):
    """(gankit's GAN step, its real batches, the recipe's schedules) for configuration ``name``.

    ``layer_precision``: the family's own reduced-precision layers (StyleGAN2's
    fp16 in the top 4 resolutions, R3GAN's bf16 stages) on CUDA; off: float32.
    """
    from gankit.core.plugins import get_host
    from gankit.recipe.build import build_regularizers
    from gankit.training.players import Players, Scheduled
    from gankit.training.state import seed_everything
    from gankit.training.step import GANStep

    extra = [f"device={device}", f"train.precision={'bf16' if bf16 else 'fp32'}",
             f"train.channels_last={str(channels_last).lower()}", f"train.compile={str(compiled).lower()}"]
    if not layer_precision:
        extra += (["generator.num_fp16_res=0", "discriminator.num_fp16_res=0"] if name.startswith("stylegan2")
                  else ["generator.fp16_stages=[]", "discriminator.fp16_stages=[]"])
    recipe = recipe_of(name, batch, extra)
    seed_everything(0)
    regularizers = build_regularizers(recipe)
    players = Players.build(recipe, device, regularizers)
    step = GANStep.from_recipe(recipe, players, regularizers, device,
                               aug_generator=torch.Generator(device).manual_seed(1))
    size, channels = recipe.data.image_size, recipe.data.channels
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    reals = [((torch.rand(batch, channels, size, size, device=device) * 2 - 1).contiguous(memory_format=fmt), None)
             for _ in range(1 + step.g_takes_batch)]
    return step, reals, Scheduled(recipe, players, step, get_host().registry)


def time_steps(step, reals, steps: int, device: torch.device, start: int = 0, scheduled=None) -> float:
    """Seconds for ``steps`` GAN steps (device drained before and after), schedules set before each."""
    sync(device)
    t0 = time.perf_counter()
    for i in range(start, start + steps):
        if scheduled is not None:
            scheduled.apply(i * reals[0][0].shape[0])
        step(reals, i)
    sync(device)
    return time.perf_counter() - t0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count(module: torch.nn.Module) -> str:
    """The parameter count, readable: 19.9M, 24.1k."""
    n = sum(p.numel() for p in module.parameters())
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


# ------------------------------------------------------------------------------------------ the official step

def import_official(folder: Path):
    """The official checkout's ``training`` package (and friends), freshly imported from ``folder``."""
    for key in list(sys.modules):
        if key.split(".")[0] in OFFICIAL_PACKAGES:
            del sys.modules[key]
    if not (folder / "training" / "loss.py").is_file():
        raise SystemExit(f"--official: {folder} is not an extracted official checkout (no training/loss.py)")
    try:
        import pkg_resources  # noqa: F401
    except ImportError:  # R3GAN's conv2d_gradfix imports parse_version from it; recent setuptools dropped it
        import packaging.version

        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=packaging.version.parse)
    sys.path.insert(0, str(folder))
    try:
        import training.augment
        import training.loss
        import training.networks
        from torch_utils import misc, training_stats
    finally:
        sys.path.remove(str(folder))
    return types.SimpleNamespace(networks=training.networks, loss=training.loss, augment=training.augment, misc=misc,
                                 stats=training_stats)


def adam(module, spec, ratio: float = 1.0) -> torch.optim.Adam:
    """The recipe's Adam for the official module, with StyleGAN2's lazy adjustment (lr·r, betas**r)."""
    betas = [float(b) ** ratio for b in spec.args.get("betas", (0.9, 0.999))]
    return torch.optim.Adam(module.parameters(), lr=spec.lr * ratio, betas=betas, eps=spec.args.get("eps", 1e-8))


class OfficialStyleGAN2:
    """StyleGAN2-ADA's training iteration (training_loop.py's loop body) on the official networks and loss."""

    def __init__(self, code, recipe, gankit_step, reals):
        g, d = recipe.generator.args, recipe.discriminator.args
        regs = {r.name: r.args for r in recipe.regularizers}
        res, ch = recipe.data.image_size, recipe.data.channels
        self.G = code.networks.Generator(
            z_dim=g["nz"], c_dim=0, w_dim=g["w_dim"], img_resolution=res, img_channels=ch,
            mapping_kwargs={"num_layers": g["mapping_layers"]},
            synthesis_kwargs={"channel_base": g["channel_base"], "channel_max": g["channel_max"], "num_fp16_res": 0,
                              "conv_clamp": g["conv_clamp"]}).train().requires_grad_(False)
        self.D = code.networks.Discriminator(
            c_dim=0, img_resolution=res, img_channels=ch, architecture=d["architecture"],
            channel_base=d["channel_base"], channel_max=d["channel_max"], num_fp16_res=0,
            conv_clamp=d["conv_clamp"], epilogue_kwargs={"mbstd_group_size": d["mbstd_group_size"]},
        ).train().requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        gk, dk = sum(p.numel() for p in self.G.parameters()), sum(p.numel() for p in self.D.parameters())
        assert (gk, dk) == tuple(sum(p.numel() for p in m.parameters()) for m in (gankit_step.G, gankit_step.D)), \
            "the official networks differ from the recipe's"
        aug = recipe.augment.args
        names = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast",
                 "lumaflip", "hue", "saturation")  # --augpipe=bgc
        self.pipe = code.augment.AugmentPipe(**{n: 1 for n in names}).train().requires_grad_(False)
        self.pipe.p.copy_(torch.as_tensor(aug["p"]))
        self.ada = code.stats.Collector(regex="Loss/signs/real")
        self.ada_target, self.ada_interval, self.ada_kimg = aug["target"], aug["interval"], aug["kimg"]
        pl = regs.get("path_length", {"weight": 0.0, "every": 4, "decay": 0.01, "batch_shrink": 2})
        self.loss = code.loss.StyleGAN2Loss(
            torch.device("cpu"), self.G.mapping, self.G.synthesis, self.D, augment_pipe=self.pipe,
            style_mixing_prob=g["style_mixing_prob"], r1_gamma=regs["r1"]["gamma"], pl_weight=pl["weight"],
            pl_batch_shrink=pl.get("batch_shrink", 2), pl_decay=pl.get("decay", 0.01))
        self.phases = []
        for name, module, spec, interval in (("G", self.G, recipe.optim.g, pl["every"]),
                                             ("D", self.D, recipe.optim.d, regs["r1"]["every"])):
            opt = adam(module, spec, interval / (interval + 1))
            self.phases += [(name + "main", module, opt, 1), (name + "reg", module, opt, interval)]
        self.code, self.batch = code, reals[0][0].shape[0]
        self.batch_gpu = self.batch // recipe.train.accumulate
        self.ema_kimg, self.ema_rampup = recipe.train.ema.half_life_kimg, recipe.train.ema.rampup
        self.cur_nimg = 0
        self.real = reals[0][0]
        self.label = lambda index: np.zeros(0, np.float32)  # an unconditional dataset's label

    def __call__(self, batch_idx: int) -> None:
        B, misc = self.batch, self.code.misc
        real_img = self.real.split(self.batch_gpu)
        real_c = torch.zeros(B, 0).split(self.batch_gpu)
        all_z = [z.split(self.batch_gpu) for z in torch.randn([len(self.phases) * B, self.G.z_dim]).split(B)]
        all_c = [self.label(np.random.randint(B)) for _ in range(len(self.phases) * B)]  # get_label(randint(len))
        all_c = [c.split(self.batch_gpu) for c in torch.from_numpy(np.stack(all_c)).split(B)]
        for (name, module, opt, interval), phase_z, phase_c in zip(self.phases, all_z, all_c):
            if batch_idx % interval != 0:
                continue
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            for r, (img, c, z, gc) in enumerate(zip(real_img, real_c, phase_z, phase_c)):
                self.loss.accumulate_gradients(phase=name, real_img=img, real_c=c, gen_z=z, gen_c=gc,
                                               sync=r == len(real_img) - 1, gain=interval)
            module.requires_grad_(False)
            for param in module.parameters():
                if param.grad is not None:
                    misc.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
            opt.step()
        ema_nimg = self.ema_kimg * 1000
        if self.ema_rampup is not None:
            ema_nimg = min(ema_nimg, self.cur_nimg * self.ema_rampup)
        beta = 0.5 ** (B / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)
        self.cur_nimg += B
        if (batch_idx + 1) % self.ada_interval == 0:
            self.ada.update()
            adjust = np.sign(self.ada["Loss/signs/real"] - self.ada_target) * (B * self.ada_interval) / (
                self.ada_kimg * 1000)
            self.pipe.p.copy_((self.pipe.p + adjust).max(misc.constant(0, device=self.pipe.p.device)))


class OfficialR3GAN:
    """R3GAN's training iteration (training_loop.py's loop body) on the official networks, loss and pipe."""

    def __init__(self, code, recipe, gankit_step, reals):
        layout_g, layout_d = gankit_step.G.layout, gankit_step.D.layout  # gankit lists D's stages from 4x4 up
        common = dict(ExpansionFactor=layout_g.expansion, FP16Stages=[], c_dim=0, img_resolution=recipe.data.image_size)
        self.G = code.networks.Generator(
            NoiseDimension=gankit_step.G.nz, WidthPerStage=list(layout_g.widths),
            CardinalityPerStage=list(layout_g.cardinalities), BlocksPerStage=list(layout_g.blocks),
            **common).train().requires_grad_(False)
        self.D = code.networks.Discriminator(
            WidthPerStage=list(layout_d.widths)[::-1], CardinalityPerStage=list(layout_d.cardinalities)[::-1],
            BlocksPerStage=list(layout_d.blocks)[::-1], **common).train().requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        assert [sum(p.numel() for p in m.parameters()) for m in (self.G, self.D)] == \
            [sum(p.numel() for p in m.parameters()) for m in (gankit_step.G, gankit_step.D)], \
            "the official networks differ from the recipe's"
        aug = recipe.augment.args
        # The recipe's preset (bgc: 1) where it gives no multiplier of its own; cutout is not in bgc.
        multipliers = {n: 1.0 if aug.get(n) is None else aug[n] for n in (
            "xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast", "lumaflip",
            "hue", "saturation")}
        multipliers["cutout"] = aug.get("cutout") or 0.0
        self.pipe = code.augment.AugmentPipe(**multipliers).train().requires_grad_(False)
        self.pipe.p.copy_(torch.as_tensor(aug["p"]))
        self.loss = code.loss.R3GANLoss(self.G, self.D, self.pipe)
        self.phases = [("D", self.D, torch.optim.Adam(self.D.parameters(), betas=[0.0, 0.0], eps=1e-8)),
                       ("G", self.G, torch.optim.Adam(self.G.parameters(), betas=[0.0, 0.0], eps=1e-8))]
        from gankit.core.plugins import get_host

        cosine = get_host().registry("schedules")
        self.schedules = {str(s.targets[0]): cosine.build_from_recipe(s.name, None, **{k: v for k, v in s.args.items()
                                                                                     if k != "target"})
                          for s in recipe.schedules}
        self.reals = [r for r, _ in reals]
        self.batch, self.batch_gpu = self.reals[0].shape[0], self.reals[0].shape[0] // recipe.train.accumulate
        self.cur_nimg = 0

    def __call__(self, batch_idx: int) -> None:
        B = self.batch
        D_z, G_z = torch.randn([B, self.G.z_dim]), torch.randn([B, self.G.z_dim])
        c = torch.zeros(B, 0)
        real_img = [self.reals[0].split(self.batch_gpu), self.reals[1].split(self.batch_gpu)]
        gen_z = [D_z.split(self.batch_gpu), G_z.split(self.batch_gpu)]
        at = self.cur_nimg
        lr, beta2 = self.schedules["optim.g.lr"](at), self.schedules["optim.g.betas.1"](at)
        gamma, ema_nimg = self.schedules["regularizers.0.gamma"](at), self.schedules["train.ema.half_life_kimg"](at) * 1000
        for (name, module, opt), imgs, zs in zip(self.phases, real_img, gen_z):
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            for img, z in zip(imgs, zs):
                self.loss.accumulate_gradients(phase=name, real_img=img, real_c=c[:img.shape[0]], gen_z=z,
                                               gamma=gamma, gain=self.batch_gpu / B)
            module.requires_grad_(False)
            for g in opt.param_groups:
                g["lr"], g["betas"] = lr, (0, beta2)
            params = [p for p in module.parameters() if p.grad is not None]
            if params:
                flat = torch.cat([p.grad.flatten() for p in params])
                for p, grad in zip(params, flat.split([p.numel() for p in params])):
                    p.grad = grad.reshape(p.shape)
            opt.step()
        beta = 0.5 ** (B / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)
        self.cur_nimg += B


def official_step(name: str, root: Path, recipe, gankit_step, reals):
    code = import_official(root / CONFIGS[name][2])
    torch.manual_seed(0)
    return (OfficialStyleGAN2 if name.startswith("stylegan2") else OfficialR3GAN)(code, recipe, gankit_step, reals)


def time_official(step, steps: int, start: int) -> float:
    t0 = time.perf_counter()
    for i in range(start, start + steps):
        step(i)
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--steps", type=int, default=2, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--official", type=Path, default=None,
                   help="a folder holding extracted official checkouts (stylegan2-ada-pytorch/, R3GAN/)")
    p.add_argument("--threads", type=int, default=None, help="torch's CPU threads (default: torch's own)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    print(f"CPU ({torch.get_num_threads()} threads), torch {torch.__version__}, batch {args.batch_size}, "
          f"{args.steps} steps x {args.rounds} rounds, alternating; p = 0.2; the step at 0 (every lazy "
          "penalty due) is warm-up")
    head = f"| {'configuration':<16} | {'params G / D':>15} | {'gankit s/step':>13} |"
    if args.official:
        head += f" {'official s/step':>15} | {'official / gankit':>17} |"
    print(head)
    print("|" + "|".join("-" * (len(c) + 0) for c in head.split("|")[1:-1]) + "|")
    for name in args.configs.split(","):
        step, reals, scheduled = build(name, args.batch_size, device)
        step(reals, 0)
        official = None
        if args.official:
            official = official_step(name, args.official, recipe_of(name, args.batch_size), step, reals)
            official(0)
        ours, theirs = [], []
        for r in range(args.rounds):  # the same iteration numbers on both sides: the same lazy phases run
            start = 1 + r * args.steps
            ours.append(time_steps(step, reals, args.steps, device, start, scheduled) / args.steps)
            if official is not None:
                theirs.append(time_official(official, args.steps, start) / args.steps)
        s = statistics.median(ours)
        row = f"| {name:<16} | {count(step.G) + ' / ' + count(step.D):>15} | {s:>13.3f} |"
        if official is not None:
            o = statistics.median(theirs)
            row += f" {o:>15.3f} | {o / s:>17.2f} |"
        print(row, flush=True)
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
            step, reals, scheduled = build(name, batch, device, **kw)
            time_steps(step, reals, warmup, device, scheduled=scheduled)
        except Exception as exc:  # a contender that cannot run here (compile without a toolchain): say so
            print(f"{label}: left out ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})", flush=True)
            continue
        built.append((label, step, reals, scheduled))
        rates[label] = []
    for r in range(rounds):
        for label, step, reals, scheduled in built:
            seconds = time_steps(step, reals, steps, device, start=warmup + r * steps, scheduled=scheduled)
            rates[label].append(steps * batch / seconds)
        print(f"round {r + 1}: " + "   ".join(f"{n} {v[-1]:,.0f} img/s" for n, v in rates.items()), flush=True)
    print(f"\n{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, {name}, batch {batch}")
    print(f"| {'contender':<22} | {'img/s':>9} | {'sec/kimg':>8} | {'vs fp32':>7} |")
    base = statistics.median(rates["fp32"]) if rates.get("fp32") else None
    for label, v in rates.items():
        m = statistics.median(v)
        print(f"| {label:<22} | {m:>9,.0f} | {1000 / m:>8.2f} | {m / base if base else math.nan:>7.2f} |")
    best = max(statistics.median(v) for v in rates.values())
    if name == "r3gan_cifar":
        print(f"projected: 250 Mimg at {best:,.0f} img/s = {250e6 / best / 3600:.1f} hours on this GPU")
    print(f"reference: {REFERENCE[name]}")
    return 0
