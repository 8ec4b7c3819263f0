"""Does each CPU-sized recipe learn, and how fast? Real FID and KID as training goes, against wall time and images.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/learning.py
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/learning.py --recipes quickstart,r3gan_tiny --points 4
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/learning.py --faces
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/learning.py --tutorial --seconds 300

Default mode: each recipe of RECIPES is trained the way a user trains it,
``gankit run recipes/X.yaml`` in a subprocess, as written apart from the data
root (``../shared/data``; sngan_cifar10 and cond_mnist have their own lengths, see RECIPES) and
three things that do not change the training: its evaluation is switched off
(``eval.metrics=[]``: this script measures every point alike, after the run,
so the wall time is training), ``train.keep_every`` keeps a checkpoint at
``--points`` regular image counts, and ``out_dir`` is a scratch folder. The
untrained generator (step 0) is rebuilt from the same recipe and seed (the
run's own :func:`~gankit.training.assemble.assemble`). Every point is then
measured in this process by one evaluator per recipe: FID and KID on the
Inception features, ``--num-fake`` generated images (the same latents at every
point) against ``--num-real`` images of the recipe's dataset. Wall time of a
point: from the ``gankit run`` process's launch to the training row of that
step (so start-up counts, as a user waits for it).

Prints a table (recipe, images, wall time, FID at start / middle / end, KID
at the end) and writes ``learning.png``: FID against wall time and against
images seen, one line per recipe, with ``learning.json`` holding every point.

``--faces``: the tiny recipes of every family (DCGAN's quickstart,
stylegan2_tiny, r3gan_tiny) on the CelebA sample at 3 channels instead of
the digits, otherwise as written.

``--tutorial``: recipes/dcgan_celeba_cpu.yaml (the tutorial's recipe at 32x32)
on the CelebA sample against the PyTorch DCGAN tutorial's own training loop,
written below as the tutorial writes it (ImageFolder, DataLoader with 2
workers, Sigmoid + BCELoss, separate real and fake backward passes), with the
same networks (the DCGAN plugin's, which are the tutorial's), the same data
and transform and the same seed (the script checks that both start from
identical weights). Each runs in its own process, one after the other, for
``--seconds`` of wall time from launch, then is stopped with Ctrl-C (SIGINT;
gankit saves its checkpoint, the tutorial loop its generator). Reported: FID
of gankit over FID of the tutorial loop at equal wall time (where each
stopped) and at equal images seen (the last checkpoint both reached), and
both speeds. The machine is shared: run them close together and read the
images-seen ratio where wall times are noisy.

Needs the Inception weights (``gankit weights fetch``; or
``GANKIT_INCEPTION_WEIGHTS=<file>``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"

# recipe -> overrides beyond the data root (why, in the comment)
RECIPES = {
    "quickstart": [],
    "dcgan_celeba_cpu": [],
    "stylegan2_tiny": [],
    "r3gan_tiny": [],
    # 5 epochs of the shared test split (10,000 digits) are 395 steps, a sixth of the recipe's 2,345 on the
    # training split: 800 steps, as its learning test (tests/test_learning.py) trains it
    "cond_mnist": ["train.steps=800", "train.epochs=null"],
    # 50,000 steps of 5 D updates at the paper's widths (256, 128) is days on a CPU, and 150 steps were estimated at
    # 3h38m here (87.6 s a step): the paper's settings and blocks at width 32, 300 steps (1,500 D updates), logged
    # every 25 so that checkpoints can be kept in between
    "sngan_cifar10": ["generator.width=32", "discriminator.width=32", "train.steps=300", "train.log_every=25"],
}
# --faces: every family's tiny recipe on the CelebA sample at 3 channels (the digits are not the only data a tiny
# recipe must learn; r3gan_tiny drew blobs on faces before its schedules were fixed). Decoded once (data.cache).
FACES = ["data.name=imagefolder", f"data.root={DATA / 'celeba_sample'}", "data.channels=3", "data.cache=true"]
FACE_RECIPES = {f"{name}@faces": FACES for name in ("quickstart", "stylegan2_tiny", "r3gan_tiny")}


def data_overrides(recipe: dict) -> list[str]:
    """data.root (and data.split) pointed at ../shared/data for the recipe's dataset."""
    name = recipe.get("data", {}).get("name", "digits")
    if name in ("imagefolder", "celeba"):
        return [f"data.root={DATA / 'celeba_sample'}"]
    if name == "mnist":
        return [f"data.root={DATA}", "data.split=test"]  # the shared copy holds the test split
    if name == "cifar10":
        return [f"data.root={DATA / 'cifar10_test'}"]
    return []


@dataclass
class Point:
    """One measured generator: where it was in training, and its metrics."""

    step: int
    images: int
    seconds: float | None  # wall time from launch (None: the untrained generator, before launch)
    fid: float = math.nan
    kid: float = math.nan


@dataclass
class Curve:
    name: str
    points: list[Point] = field(default_factory=list)
    img_per_s: float = math.nan
    note: str = ""


# ---------------------------------------------------------------------------------------------------------------
# Training, as a user runs it


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}


def gankit_run(recipe: Path, overrides: list[str], seconds: float | None = None) -> tuple[Path, float]:
    """``gankit run RECIPE OVERRIDES`` in a subprocess; with ``seconds``, Ctrl-C that long after launch.

    Returns (the run directory, the launch time).
    """
    out = Path(overrides_value(overrides, "out_dir"))
    launched = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "gankit", "run", str(recipe), *overrides], cwd=REPO,
                            env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stop_at = None if seconds is None else launched + seconds
    output = []
    try:
        if stop_at is not None:
            while proc.poll() is None and time.time() < stop_at:
                time.sleep(0.2)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # a clean stop: gankit saves a checkpoint at this step
        output = proc.communicate()[0]
    except BaseException:
        proc.kill()
        raise
    if proc.returncode not in (0, 130):  # 130: stopped by the Ctrl-C above, its checkpoint saved
        sys.exit(f"gankit run {recipe} failed (exit {proc.returncode}):\n{output[-3000:]}")
    runs = sorted(p for p in out.glob("*/*") if p.is_dir())
    return runs[-1], launched


def overrides_value(overrides: list[str], key: str) -> str:
    return next(o.split("=", 1)[1] for o in reversed(overrides) if o.startswith(key + "="))


def train_rows(run_dir: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {r["step"]: r for r in rows if r.get("kind") == "train"}


def wall_time(run_dir: Path, step: int, launched: float, rows: dict[int, dict]) -> float:
    """Seconds from launch to the end of ``step``: its training row, else its checkpoint's write."""
    if step in rows:
        return rows[step]["time"] - launched
    kept = run_dir / "checkpoints" / f"step_{step:07d}.pt"
    path = kept if kept.is_file() else run_dir / "checkpoints" / "last.pt"
    return path.stat().st_mtime - launched


# ---------------------------------------------------------------------------------------------------------------
# Measuring


class Measure:
    """One evaluator for a recipe: FID and KID of any generator, same latents, same real images."""

    def __init__(self, recipe, num_fake: int, num_real: int):
        from gankit.core.plugins import get_host
        from gankit.eval.evaluator import Evaluator
        from gankit.recipe.schema import EvalSection
        from gankit.recipe.build import build_dataset

        self.recipe = recipe.model_copy(deep=True)
        self.recipe.eval = EvalSection(metrics=["fid", "kid"], num_fake=num_fake, num_real=num_real,
                                       kid_subset_size=min(1000, num_fake, num_real), seed=0)
        self.evaluator = Evaluator(self.recipe, "cpu", lambda: build_dataset(self.recipe),
                                   registry=get_host().registry, log=lambda text: print(text, file=sys.stderr))
        for notice in self.evaluator.prepare(allow_download=False):
            print(notice, file=sys.stderr)
        missing = {"fid", "kid"} - set(self.evaluator.metrics)
        if missing:
            sys.exit(f"cannot measure {', '.join(sorted(missing))}: {self.evaluator.skipped}\n"
                     "get the Inception weights first: gankit weights fetch")

    def __call__(self, G, point: Point) -> Point:
        from gankit.nn.conditional import num_classes
        from gankit.sampling import generate_from

        # every class in turn for a conditional G, as a run's own evaluation
        rows = self.evaluator.evaluate(lambda z, labels=None: generate_from(G, z, labels), G.nz, point.step,
                                       classes=num_classes(G))
        values = {row["metric"]: row["value"] for row in rows}
        point.fid, point.kid = values["fid"], values["kid"]
        return point


def untrained_generator(recipe, scratch: Path):
    """The generator a run of ``recipe`` starts from: its own parts, same seed, before any step."""
    from gankit.training.assemble import assemble

    recipe = recipe.model_copy(deep=True)
    recipe.out_dir = str(scratch)
    recipe.eval.metrics = []  # measured by the caller's evaluator; an evaluator here would only look for weights
    run = assemble(recipe)
    if run.lock is not None:
        run.lock.release()
    return run.players.sampler


def checkpoint_generator(path: Path):
    from gankit.runs.loading import load_checkpoint_generator

    loaded = load_checkpoint_generator(path)
    return loaded.G, loaded.checkpoint


# ---------------------------------------------------------------------------------------------------------------
# Default mode: every recipe's learning curve


def learning_curve(name: str, extra: list[str], args, scratch: Path) -> Curve:
    import yaml

    import gankit

    path = REPO / "recipes" / f"{name.split('@')[0]}.yaml"
    raw = yaml.safe_load(path.read_text())
    base = [*data_overrides(raw), *extra, *([f"train.steps={args.steps}", "train.epochs=null"] if args.steps else [])]
    recipe = gankit.load_recipe(path, base)
    per_step = recipe.data.batch_size * recipe.train.d_steps
    total = recipe.train.steps or math.inf
    if recipe.train.epochs:  # the dataset's length decides the run's
        from gankit.recipe.build import build_dataset

        batches = len(build_dataset(recipe)) // recipe.data.batch_size if recipe.data.drop_last else \
            math.ceil(len(build_dataset(recipe)) / recipe.data.batch_size)
        total = min(total, max(1, recipe.train.epochs * batches // recipe.train.d_steps))
    log_every = recipe.train.log_every
    keep = max(log_every, round(total / args.points / log_every) * log_every)
    out = scratch / name
    overrides = [*base, "eval.metrics=[]", f"train.keep_every={keep}", f"out_dir={out}"]
    if args.run:  # measure a run made before (by this script, or any run with kept checkpoints)
        run_dir = Path(args.run)
        # its launch is not recorded: the run directory's creation (its recipe.yaml), a few seconds after launch
        launched = (run_dir / "recipe.yaml").stat().st_mtime
        print(f"{name}: measuring {run_dir} (wall time from its recipe.yaml: start-up not counted)",
              file=sys.stderr, flush=True)
    else:
        print(f"{name}: gankit run recipes/{path.name} {' '.join(overrides)}", file=sys.stderr, flush=True)
        run_dir, launched = gankit_run(path, overrides)
    rows = train_rows(run_dir)
    measure = Measure(recipe, args.num_fake, args.num_real)
    curve = Curve(name)
    curve.points.append(measure(untrained_generator(recipe, scratch / "untrained"), Point(0, 0, None)))
    for step, ckpt in spread(run_dir, args.points, until=total):
        G, state = checkpoint_generator(ckpt)
        curve.points.append(measure(G, Point(step, state["images_seen"], wall_time(run_dir, step, launched, rows))))
        print(f"  step {step}: fid {curve.points[-1].fid:.2f}", file=sys.stderr, flush=True)
    speeds = [r["img_per_s"] for r in rows.values() if "img_per_s" in r]
    curve.img_per_s = sorted(speeds)[len(speeds) // 2] if speeds else math.nan
    return curve


def spread(run_dir: Path, points: int, until: float = math.inf) -> list[tuple[int, Path]]:
    """Up to ``points`` of the run's checkpoints up to step ``until``, evenly spread, the last among them."""
    last = run_dir / "checkpoints" / "last.pt"
    kept = {int(p.stem.split("_")[1]): p for p in (run_dir / "checkpoints").glob("step_*.pt")}
    kept[checkpoint_generator(last)[1]["step"]] = last
    kept = {step: path for step, path in kept.items() if step <= until}
    steps = sorted(kept)
    final = steps[-1]
    # the kept checkpoint nearest each of points evenly spaced steps (fewer when two fall on the same one)
    chosen = sorted({min(steps, key=lambda s: abs(s - final * i / points)) for i in range(1, points + 1)})
    return [(s, kept[s]) for s in chosen]


def middle(points: list[Point]) -> Point:
    half = points[-1].images / 2
    return min(points[1:], key=lambda p: abs(p.images - half))


def table(curves: list[Curve]) -> str:
    head = (f"{'recipe':<18} {'steps':>6} {'images':>8} {'wall s':>7} {'img/s':>6} {'FID start':>9} "
            f"{'FID mid':>8} {'(images)':>9} {'FID end':>8} {'KID end':>8} {'end/start':>9}")
    lines = [head, "-" * len(head)]
    for c in curves:
        start, mid, end = c.points[0], middle(c.points), c.points[-1]
        lines.append(f"{c.name:<18} {end.step:>6} {end.images:>8,} {end.seconds:>7.0f} {c.img_per_s:>6.0f} "
                     f"{start.fid:>9.1f} {mid.fid:>8.1f} {mid.images:>9,} {end.fid:>8.1f} {end.kid:>8.4f} "
                     f"{end.fid / start.fid:>9.2f}")
    return "\n".join(lines)


def plot(curves: list[Curve], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_time, by_images) = plt.subplots(1, 2, figsize=(12, 4.5))
    for c in curves:
        trained = [p for p in c.points if p.seconds is not None]
        # the untrained point sits at t = 0 and 0 images: where every run starts
        by_time.plot([0] + [p.seconds for p in trained], [c.points[0].fid] + [p.fid for p in trained], "o-",
                     label=c.name)
        by_images.plot([p.images for p in c.points], [p.fid for p in c.points], "o-", label=c.name)
    # the recipes' lengths differ a hundredfold: logarithmic axes, linear near 0 (where the untrained point is)
    by_time.set(xlabel="wall time from launch (s)", ylabel="FID", yscale="log", title="FID against wall time")
    by_time.set_xscale("symlog", linthresh=10)
    by_images.set(xlabel="images seen", ylabel="FID", yscale="log", title="FID against images seen")
    by_images.set_xscale("symlog", linthresh=1000)
    by_images.legend(fontsize=8)
    for ax in (by_time, by_images):
        ax.set_xlim(left=0)  # symlog would otherwise show negative time and images
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save(curves: list[Curve], out: Path, settings: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = {"settings": settings, "curves": [{"name": c.name, "img_per_s": c.img_per_s, "note": c.note,
                                              "points": [vars(p) for p in c.points]} for c in curves]}
    (out / "learning.json").write_text(json.dumps(data, indent=1))


# ---------------------------------------------------------------------------------------------------------------
# --tutorial: the PyTorch DCGAN tutorial's loop, as the tutorial writes it


def tutorial_loop(dataroot: str, image_size: int, out: Path, keep_every: int) -> None:
    """The PyTorch DCGAN tutorial's training loop (its variable names), on the DCGAN plugin's networks.

    Saves ``out/step_N.pt`` every ``keep_every`` iterations and ``out/last.pt``
    on Ctrl-C: the generator's state, the iteration, the images seen and the time.
    """
    import random

    import torch
    import torch.nn as nn
    import torch.optim as optim
    import torch.utils.data
    import torchvision.datasets as dset
    import torchvision.transforms as transforms

    from gankit_dcgan.models import DCGANDiscriminator, DCGANGenerator

    manualSeed = 999  # noqa: N806 (the tutorial's names)
    random.seed(manualSeed)
    torch.manual_seed(manualSeed)
    workers, batch_size, nc, nz, ngf, ndf = 2, 128, 3, 100, 32, 32  # dcgan_celeba_cpu.yaml's values
    lr, beta1 = 0.0002, 0.5

    dataset = dset.ImageFolder(root=dataroot, transform=transforms.Compose([
        transforms.Resize(image_size),
        transforms.CenterCrop(image_size),
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ]))
    dataloader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)
    device = torch.device("cpu")

    # The tutorial's Generator and Discriminator at image_size (the plugin builds exactly those, weights_init
    # included); the tutorial's D ends in a Sigmoid, the plugin's in a logit: the Sigmoid is applied below.
    netG = DCGANGenerator(nz=nz, ngf=ngf, channels=nc, image_size=image_size).to(device)  # noqa: N806
    netD = DCGANDiscriminator(ndf=ndf, channels=nc, image_size=image_size).to(device)  # noqa: N806

    def D(x):  # noqa: N802
        return torch.sigmoid(netD(x))

    criterion = nn.BCELoss()
    real_label, fake_label = 1.0, 0.0
    optimizerD = optim.Adam(netD.parameters(), lr=lr, betas=(beta1, 0.999))  # noqa: N806
    optimizerG = optim.Adam(netG.parameters(), lr=lr, betas=(beta1, 0.999))  # noqa: N806

    out.mkdir(parents=True, exist_ok=True)
    iters, images = 0, 0

    def save(name: str) -> None:
        torch.save({"generator": netG.state_dict(), "step": iters, "images_seen": images, "time": time.time()},
                   out / name)

    save("step_0000000.pt")
    try:
        epoch = 0
        while True:
            for i, data in enumerate(dataloader, 0):
                ############################
                # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
                ###########################
                ## Train with all-real batch
                netD.zero_grad()
                real_cpu = data[0].to(device)
                b_size = real_cpu.size(0)
                label = torch.full((b_size,), real_label, dtype=torch.float, device=device)
                output = D(real_cpu).view(-1)
                errD_real = criterion(output, label)  # noqa: N806
                errD_real.backward()
                ## Train with all-fake batch
                noise = torch.randn(b_size, nz, 1, 1, device=device)
                fake = netG(noise)
                label.fill_(fake_label)
                output = D(fake.detach()).view(-1)
                errD_fake = criterion(output, label)  # noqa: N806
                errD_fake.backward()
                optimizerD.step()

                ############################
                # (2) Update G network: maximize log(D(G(z)))
                ###########################
                netG.zero_grad()
                label.fill_(real_label)  # fake labels are real for generator cost
                output = D(fake).view(-1)
                errG = criterion(output, label)  # noqa: N806
                errG.backward()
                optimizerG.step()

                iters += 1
                images += b_size
                if iters % keep_every == 0:
                    save(f"step_{iters:07d}.pt")
            epoch += 1
    except KeyboardInterrupt:
        save("last.pt")


def tutorial_checkpoints(out: Path) -> list[dict]:
    import torch

    found = {}
    for path in sorted(out.glob("*.pt")):
        state = torch.load(path, map_location="cpu", weights_only=True)
        found[state["step"]] = state
    return [found[k] for k in sorted(found)]


def tutorial_comparison(args, scratch: Path) -> None:
    import torch
    import yaml

    import gankit
    from gankit.recipe.build import build_generator

    path = REPO / "recipes" / "dcgan_celeba_cpu.yaml"
    root = DATA / "celeba_sample"
    base = data_overrides(yaml.safe_load(path.read_text()))
    recipe = gankit.load_recipe(path, base)
    size, keep = recipe.data.image_size, args.keep_every

    # gankit, as a user runs it (long enough never to end by itself), stopped with Ctrl-C after --seconds
    overrides = [*base, "train.steps=1000000", "eval.metrics=[]", f"train.keep_every={keep}",
                 f"out_dir={scratch / 'gankit'}"]
    print(f"gankit: gankit run recipes/dcgan_celeba_cpu.yaml {' '.join(overrides)}  (Ctrl-C after "
          f"{args.seconds:.0f} s)", file=sys.stderr, flush=True)
    run_dir, launched = gankit_run(path, overrides, seconds=args.seconds)
    rows = train_rows(run_dir)

    # the tutorial's loop, in its own process, for the same wall time
    loop_out = scratch / "tutorial"
    cmd = [sys.executable, __file__, "--tutorial-loop", str(root), "--image-size", str(size), "--out", str(loop_out),
           "--keep-every", str(keep)]
    print(f"tutorial loop: {' '.join(cmd[1:])}  (Ctrl-C after {args.seconds:.0f} s)", file=sys.stderr, flush=True)
    loop_launched = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO, env=environment())
    while proc.poll() is None and time.time() < loop_launched + args.seconds:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait()
    plain = tutorial_checkpoints(loop_out)

    measure = Measure(recipe, args.num_fake, args.num_real)
    start = untrained_generator(recipe, scratch / "untrained")
    same_start = all(torch.equal(a, b) for a, b in zip(start.state_dict().values(), plain[0]["generator"].values()))
    G = build_generator(recipe)

    def plain_point(state) -> Point:
        G.load_state_dict(state["generator"])
        return measure(G, Point(state["step"], state["images_seen"], state["time"] - loop_launched))

    def gankit_point(ckpt: Path) -> Point:
        Gk, state = checkpoint_generator(ckpt)
        seconds = wall_time(run_dir, state["step"], launched, rows)
        return measure(Gk, Point(state["step"], state["images_seen"], seconds))

    g_end = gankit_point(run_dir / "checkpoints" / "last.pt")
    p_end = plain_point(plain[-1])
    common = min(g_end.step, p_end.step) // keep * keep
    kept = run_dir / "checkpoints" / f"step_{common:07d}.pt"
    g_same = gankit_point(kept) if common else measure(start, Point(0, 0, None))
    p_same = plain_point(next(s for s in plain if s["step"] == common))
    start_fid = measure(start, Point(0, 0, None)).fid

    speed_g, speed_p = g_end.images / g_end.seconds, p_end.images / p_end.seconds
    print()
    print(f"tutorial recipe at {size}x{size} (recipes/dcgan_celeba_cpu.yaml) on {root.relative_to(REPO.parent)}, "
          f"{args.seconds:.0f} s each from launch; FID {args.num_fake} generated vs {args.num_real} real; "
          f"identical initial weights: {'yes' if same_start else 'NO'}; untrained FID {start_fid:.1f}")
    print(f"{'':<22} {'gankit':>10} {'tutorial':>10} {'gankit/tutorial':>16}")
    print(f"{'iterations':<22} {g_end.step:>10} {p_end.step:>10} {g_end.step / p_end.step:>16.3f}")
    print(f"{'images/s (launch on)':<22} {speed_g:>10.1f} {speed_p:>10.1f} {speed_g / speed_p:>16.3f}")
    print(f"{'FID, equal wall time':<22} {g_end.fid:>10.2f} {p_end.fid:>10.2f} {g_end.fid / p_end.fid:>16.3f}")
    print(f"{'FID at ' + format(common * recipe.data.batch_size, ',') + ' images':<22} {g_same.fid:>10.2f} "
          f"{p_same.fid:>10.2f} {g_same.fid / p_same.fid:>16.3f}")
    print(f"{'KID, equal wall time':<22} {g_end.kid:>10.4f} {p_end.kid:>10.4f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tutorial.json").write_text(json.dumps({
        "seconds": args.seconds, "num_fake": args.num_fake, "num_real": args.num_real, "same_start": same_start,
        "untrained_fid": start_fid, "gankit": {"end": vars(g_end), "equal_images": vars(g_same)},
        "tutorial": {"end": vars(p_end), "equal_images": vars(p_same)}}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", help="comma-separated, from: " + ", ".join({**RECIPES, **FACE_RECIPES})
                        + " (default: all of the first list; with --faces, the second)")
    parser.add_argument("--faces", action="store_true", help="the tiny recipes on the CelebA sample at 3 channels")
    parser.add_argument("--points", type=int, default=4, help="measured points after the start (kept checkpoints)")
    parser.add_argument("--steps", type=int, help="train.steps for every recipe (a quick look; not as written)")
    parser.add_argument("--num-fake", type=int, default=1000, help="generated images per FID")
    parser.add_argument("--num-real", type=int, default=2000, help="real images (fewer when the dataset has fewer)")
    parser.add_argument("--out", default="benchmarks/results", help="where learning.png / learning.json go")
    parser.add_argument("--keep", action="store_true", help="keep the runs (in --out/runs) instead of a temp folder")
    parser.add_argument("--run", metavar="RUN_DIR", help="measure this earlier run of the one recipe in --recipes "
                        "(its kept checkpoints, e.g. from --keep) instead of training it again")
    parser.add_argument("--tutorial", action="store_true", help="gankit vs the tutorial's loop (see above)")
    parser.add_argument("--seconds", type=float, default=300, help="--tutorial: wall time for each")
    parser.add_argument("--keep-every", type=int, default=50, help="--tutorial: iterations between checkpoints")
    parser.add_argument("--tutorial-loop", metavar="DATAROOT", help=argparse.SUPPRESS)  # the loop's own process
    parser.add_argument("--image-size", type=int, default=32, help=argparse.SUPPRESS)
    args = parser.parse_args()
    # A shell starts background jobs with SIGINT ignored, and an ignored signal stays ignored in the processes
    # started from them: the Ctrl-C that stops the runs above would be lost. Python's own handler here means
    # every process this one starts gets the default disposition.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.tutorial_loop:
        tutorial_loop(args.tutorial_loop, args.image_size, Path(args.out), args.keep_every)
        return
    with tempfile.TemporaryDirectory(prefix="gankit-learning-") as tmp:
        scratch = Path(args.out) / "runs" if args.keep else Path(tmp)
        if args.tutorial:
            tutorial_comparison(args, scratch)
            return
        known = {**RECIPES, **FACE_RECIPES}
        chosen = args.recipes or ",".join(FACE_RECIPES if args.faces else RECIPES)
        names = [n.strip() for n in chosen.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            sys.exit(f"unknown recipe(s) {', '.join(unknown)}; choose from {', '.join(known)}")
        if args.run and len(names) != 1:
            sys.exit(f"--run measures one run: name its recipe alone in --recipes (got {len(names)})")
        curves = [learning_curve(name, known[name], args, scratch) for name in names]
    out = Path(args.out)
    settings = {"num_fake": args.num_fake, "num_real": args.num_real, "points": args.points}
    save(curves, out, settings)
    plot(curves, out / "learning.png", f"real FID ({args.num_fake} generated vs {args.num_real} real), "
                                       "each recipe as written on ../shared/data")
    print(table(curves))
    since = "the run directory's creation (--run)" if args.run else "`gankit run`'s launch"
    print(f"FID {args.num_fake} generated vs up to {args.num_real} real; wall time from {since}; "
          f"img/s: median of the run's logged windows. Plot: {out / 'learning.png'}")


if __name__ == "__main__":
    main()
