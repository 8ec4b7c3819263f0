"""The PyTorch DCGAN tutorial's three pictures of a run, as files in its run directory.

    paths = write_tutorial_plots(run_dir)   # at the end of training (and by ``gankit report``)

    losses.png        "Generator and Discriminator Loss During Training": G's and D's loss against iterations
    progress.gif      the fixed-noise grid through training (``samples/step_*.png``), one frame per grid
    real_vs_fake.png  real images (``samples/real.png``) beside the last fake grid

Each is written only when the run has what it shows (logged losses, grids,
the real grid), atomically, so a report or a viewer never sees half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from gankit.rundir.record import load_run
from gankit.runs.compare import curve
from gankit.runs.plots import save

LOSSES, PROGRESS, REAL_VS_FAKE = "losses.png", "progress.gif", "real_vs_fake.png"
REAL_GRID = "real.png"  # under samples/: the trainer writes it from the run's first real batch
# A GIF of every grid of a long run would be tens of MB; evenly spaced frames, the last always kept, tell the story.
MAX_FRAMES = 60
FRAME_MS, LAST_FRAME_MS = 400, 2000  # the last grid lingers before the loop starts again


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and never a GUI window
    import matplotlib.pyplot as plt

    return plt


def _atomic(out: Path, write) -> Path:
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix}")
    try:
        write(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def loss_plot(run_dir: Path, out: Path) -> Path | None:
    """The tutorial's loss figure: G and D on one plot against iterations; None when no loss was logged."""
    run = load_run(run_dir)
    lines = [(label, *curve(run, key)) for label, key in (("G", "loss_g"), ("D", "loss_d"))]
    lines = [line for line in lines if line[1]]
    if not lines:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.set_title("Generator and Discriminator Loss During Training")
    for label, steps, values in lines:
        ax.plot(steps, values, label=label)
    ax.set_xlabel("iterations")
    ax.set_ylabel("Loss")
    ax.legend()
    fig.tight_layout()
    return _atomic(out, lambda tmp: save(fig, tmp, dpi=80))


def evenly(paths: list[Path], limit: int) -> list[Path]:
    """At most ``limit`` of ``paths``, evenly spaced, the first and the last always kept."""
    if len(paths) <= limit:
        return paths
    picked = sorted({round(i * (len(paths) - 1) / (limit - 1)) for i in range(limit)})
    return [paths[i] for i in picked]


def progress_gif(grids: list[Path], out: Path) -> Path | None:
    """The fixed-noise grids as one looping GIF, oldest first; None without grids."""
    from PIL import Image

    grids = evenly(grids, MAX_FRAMES)
    if not grids:
        return None
    frames = []
    for path in grids:
        with Image.open(path) as img:
            frames.append(img.convert("RGB"))
    size = frames[-1].size  # a grid written before a change of tile size is fitted to the last one
    frames = [f if f.size == size else f.resize(size, Image.Resampling.NEAREST) for f in frames]
    durations = [FRAME_MS] * (len(frames) - 1) + [LAST_FRAME_MS]

    def write(tmp):
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)

    return _atomic(out, write)


def real_vs_fake(real: Path, fake: Path, out: Path) -> Path:
    """The tutorial's last figure: real images on the left, the last fake grid on the right."""
    from PIL import Image

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.4))
    for ax, path, title in ((axes[0], real, "Real Images"), (axes[1], fake, f"Fake Images ({_step(fake)})")):
        with Image.open(path) as img:
            ax.imshow(img.convert("RGB"), interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    return _atomic(out, lambda tmp: save(fig, tmp, dpi=100))


def _step(grid: Path) -> str:
    return "step " + (grid.stem.removeprefix("step_").lstrip("0") or "0")


def write_tutorial_plots(run_dir: str | os.PathLike) -> dict[str, Path]:
    """Write what the run has of the three pictures; ``{"losses"|"progress"|"real_vs_fake": path}``."""
    run_dir = Path(run_dir)
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    real = run_dir / "samples" / REAL_GRID
    written = {"losses": loss_plot(run_dir, run_dir / LOSSES),
               "progress": progress_gif(grids, run_dir / PROGRESS),
               "real_vs_fake": real_vs_fake(real, grids[-1], run_dir / REAL_VS_FAKE)
               if grids and real.is_file() else None}
    return {name: path for name, path in written.items() if path is not None}
