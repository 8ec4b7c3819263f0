"""When a run shows its pictures, and how large: a learner sees the fixed-noise grid early and readable.

    pictures = Pictures(run_dir)
    pictures.start()                          # the loop begins: the first grid is due FIRST_GRID_SECONDS later
    pictures.due(step, sample_every, final)   # a grid now? on schedule, at the end, or the first one early
    scale = pictures.scale(images)            # nearest-neighbour enlargement to tiles of TILE_PX at least
    pictures.keep_real(real_batch, n)         # the run's real images, for the real-vs-fake figure
    pictures.finish(reporter, step, status)   # samples/real.png, the tutorial's plots (gankit.runs.tutorial_plots)

The grids themselves are drawn by the trainer (``Trainer.save_samples``):
what is sampled belongs to the loop; when and how large is decided here.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from torch import Tensor

from gankit.runs.tutorial_plots import REAL_GRID, write_tutorial_plots
from gankit.sampling import save_grid

# The first grid comes at most this many seconds into training, whatever train.sample_every says (then grids
# follow its schedule); each tile of a training grid is at least TILE_PX pixels wide.
FIRST_GRID_SECONDS = 60.0
TILE_PX = 64


def scale_for(images: Tensor) -> int:
    """The whole-number enlargement that makes each tile at least TILE_PX pixels on its shorter side."""
    return max(1, math.ceil(TILE_PX / min(images.shape[-2:])))


class Pictures:
    """The grids' timing and size, the run's real images, and the tutorial's plots at the end."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.grid_step: int | None = None  # the step of this session's last grid
        self.first_by: float | None = None  # when the first grid of this session is due (perf_counter)
        self.real: Tensor | None = None

    def start(self) -> None:
        if self.first_by is None:
            self.first_by = time.perf_counter() + FIRST_GRID_SECONDS

    def due(self, step: int, sample_every: int | None, final: bool) -> bool:
        """A grid at this step: at the end, on schedule, or the first one once FIRST_GRID_SECONDS have passed."""
        scheduled = bool(sample_every) and step % sample_every == 0
        early = self.grid_step is None and self.first_by is not None and time.perf_counter() >= self.first_by
        return final or scheduled or early

    def drawn(self, step: int) -> None:
        self.grid_step = step

    def has_grid(self, step: int) -> bool:
        return self.grid_step == step

    scale = staticmethod(scale_for)

    def keep_real(self, real: Tensor, n: int) -> None:
        """The first real batch this session sees (``n`` images of it, on the CPU), once."""
        if self.real is None:
            self.real = real[:n].detach().cpu()

    def finish(self, reporter, step: int, status: str) -> dict[str, Path]:
        """Write ``samples/real.png`` and the tutorial's plots from what the run directory holds, and log them."""
        try:
            if self.real is not None:
                save_grid(self.real, self.run_dir / "samples" / REAL_GRID, scale=scale_for(self.real))
            written = write_tutorial_plots(self.run_dir)
            reporter.images(step, written)
            return written
        except Exception as exc:  # noqa: BLE001 - plots must never turn a run's end into another failure
            if status == "finished":
                reporter.message(f"could not draw the run's plots: {exc}")
            return {}
