"""A run's health: alerts that a GAN run is failing, and failures a user can act on.

Failures (out of memory, a full or unwritable disk) become a
:class:`GankitError` (exit 2, no traceback) that says what to change;
anything else keeps its traceback: it is a bug somewhere. Non-finite values
are :mod:`gankit.training.nonfinite`'s.

Four alerts, each configured in the recipe's ``health`` section (``None``
turns one off):

- ``d_dominance``: D(x) - D(G(z)) stayed above ``d_dominance_gap`` for
  ``d_dominance_window`` steps in a row (D wins every time; G learns nothing);
- ``vanishing_g_grad``: G's gradient norm stayed below ``vanishing_grad_g``
  for ``vanishing_window`` steps in a row;
- ``mode_collapse``: the fixed-noise grid's diversity (mean pairwise distance
  of its images, at most 32x32 pixels) fell below ``collapse_ratio`` times
  that of real images;
- ``fid_regression``: FID rose more than ``fid_regression`` above its best.

Cost: per step only a handful of tensor operations on the statistics the step
already computed, on their device and without a host sync; the streaks are
read at log steps (which sync anyway), the diversity when a grid is drawn,
FID when it is evaluated. An alert fires once when its condition starts and
again only after the condition has cleared.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.core.errors import GankitError

DIVERSITY_PIXELS = 32  # images are average-pooled to at most this size before distances are taken
# errno values that mean "this folder cannot take this write"
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO}
_MEMORY_WORDS = ("can't allocate memory", "out of memory", "size calculation overflowed")


def is_out_of_memory(exc: BaseException) -> bool:
    """torch reports a failed allocation as a RuntimeError (CPU) or OutOfMemoryError (CUDA)."""
    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or any(w in str(exc) for w in _MEMORY_WORDS)


def memory_error(exc: BaseException, during: str) -> GankitError:
    text = str(exc).strip()
    asked = re.search(r"tried to allocate (\d+) bytes", text)
    what = f"it asked for {int(asked[1]) / 2**30:,.1f} GiB at once" if asked else (text.splitlines() or ["?"])[-1]
    return GankitError(f"out of memory during {during}: {what}\n    the recipe asks for more memory than there is: "
                       "reduce data.image_size, data.batch_size, train.num_samples or the networks' width")


def disk_error(exc: OSError, where) -> GankitError:
    return GankitError(f"cannot write to '{where}' ({exc.filename or 'metrics.jsonl'}): {exc.strerror or exc}")


@dataclass
class Alert:
    name: str  # d_dominance, vanishing_g_grad, mode_collapse, fid_regression
    message: str  # one line for the console
    evidence: dict[str, Any]  # the numbers behind it, for metrics.jsonl


def diversity(images: Tensor) -> float:
    """Mean pairwise L2 distance between images (pooled to at most 32x32), per pixel value."""
    x = images.detach().float()
    if x.shape[-1] > DIVERSITY_PIXELS or x.shape[-2] > DIVERSITY_PIXELS:
        x = F.adaptive_avg_pool2d(x, DIVERSITY_PIXELS)
    x = x.flatten(1)
    if x.shape[0] < 2:
        return float("nan")
    return float(torch.pdist(x).mean()) / x.shape[1] ** 0.5


def reference_images(dataset, count: int) -> Tensor | None:
    """``count`` real images spread evenly over ``dataset`` (no random stream is touched).

    Unreadable items are left out; None when fewer than two could be read.
    """
    n = len(dataset)
    count = max(2, min(count, n, 256))
    images = []
    for i in range(count):
        try:
            item = dataset[i * n // count]
        except Exception:  # a broken item only weakens the reference; the loader reports it
            continue
        if isinstance(item, tuple) and isinstance(item[0], Tensor):
            images.append(item[0])
    return torch.stack(images) if len(images) >= 2 else None


class HealthMonitor:
    """Watches a run's statistics, grids and FID; each ``at_*`` method returns the alerts due."""

    def __init__(self, cfg, device: torch.device, real_images: Callable[[], Tensor | None]):
        self.cfg = cfg  # the recipe's HealthSection
        self.device = device
        self._real_images = real_images
        self._real_diversity: float | None = None
        # Steps in a row with: D dominating, G's gradient vanishing. On the device: no sync per step.
        self._streaks = torch.zeros(2, dtype=torch.long, device=device)
        # Each step counts when [D(x) - D(G(z)), -|grad G|] > these; inf: that alert is off.
        off = float("inf")
        self._limits = torch.tensor([off if cfg.d_dominance_gap is None else cfg.d_dominance_gap,
                                     off if cfg.vanishing_grad_g is None else -cfg.vanishing_grad_g], device=device)
        self._zero = torch.zeros((), device=device)
        self._active: set[str] = set()

    # -- every step -----------------------------------------------------------------
    def observe(self, stats: dict[str, Tensor]) -> None:
        """Count the step towards the streaks (device-side, no host sync)."""
        gap = stats["d_real"] - stats["d_fake"] if "d_real" in stats and "d_fake" in stats else self._zero
        grad = -stats["grad_norm_g"] if "grad_norm_g" in stats else self._zero
        try:
            values = torch.stack([gap, grad])
        except RuntimeError:  # a loss reporting non-scalar statistics: judge their means
            values = torch.stack([gap.float().mean(), grad.float().mean()])
        self._streaks = (self._streaks + 1) * (values > self._limits)

    # -- at log steps ---------------------------------------------------------------
    def at_log(self, step: int, scalars: dict[str, float]) -> list[Alert]:
        c = self.cfg
        d_steps, g_steps = self._streaks.tolist()
        alerts = []
        if c.d_dominance_gap is not None:
            alerts += self._edge("d_dominance", d_steps >= c.d_dominance_window, lambda: Alert(
                "d_dominance",
                f"D dominates: D(x) - D(G(z)) above {c.d_dominance_gap} for {d_steps} steps in a row "
                f"(now D(x) {scalars.get('d_real', float('nan')):.3f}, D(G(z)) {scalars.get('d_fake', float('nan')):.3f}); "
                "G may have stopped learning",
                {"steps": d_steps, "gap_threshold": c.d_dominance_gap, "window": c.d_dominance_window,
                 "d_real": scalars.get("d_real"), "d_fake": scalars.get("d_fake")},
            ))
        if c.vanishing_grad_g is not None:
            alerts += self._edge("vanishing_g_grad", g_steps >= c.vanishing_window, lambda: Alert(
                "vanishing_g_grad",
                f"G's gradients vanish: norm below {c.vanishing_grad_g:g} for {g_steps} steps in a row "
                f"(now {scalars.get('grad_norm_g', float('nan')):.3g})",
                {"steps": g_steps, "threshold": c.vanishing_grad_g, "window": c.vanishing_window,
                 "grad_norm_g": scalars.get("grad_norm_g")},
            ))
        return alerts

    # -- when the fixed-noise grid is drawn -----------------------------------------------
    def at_samples(self, step: int, images: Tensor) -> list[Alert]:
        c = self.cfg
        if c.collapse_ratio is None or step < c.collapse_after:
            return []
        if self._real_diversity is None:
            real = self._real_images()
            self._real_diversity = diversity(real) if real is not None else float("nan")
        fake, real = diversity(images), self._real_diversity
        if not real > 0:  # no reference (unreadable data, identical images): nothing to compare with
            return []
        ratio = fake / real
        return self._edge("mode_collapse", ratio < c.collapse_ratio, lambda: Alert(
            "mode_collapse",
            f"mode collapse: the fixed-noise grid's diversity is {ratio:.2f} of real images' "
            f"(below {c.collapse_ratio}); G draws nearly the same image for different z",
            {"ratio": ratio, "fake_diversity": fake, "real_diversity": real, "threshold": c.collapse_ratio,
             "images": int(images.shape[0])},
        ))

    # -- after an evaluation --------------------------------------------------------------
    def at_fid(self, step: int, fid: float, best: float | None) -> list[Alert]:
        """``best``: the best FID before this evaluation."""
        c = self.cfg
        if c.fid_regression is None or best is None:
            return []
        limit = best * (1 + c.fid_regression)
        return self._edge("fid_regression", fid > limit, lambda: Alert(
            "fid_regression",
            f"FID regressed to {fid:.2f}, more than {c.fid_regression:.0%} above its best {best:.2f}",
            {"fid": fid, "best_fid": best, "threshold": c.fid_regression},
        ))

    def _edge(self, name: str, condition: bool, make: Callable[[], Alert]) -> list[Alert]:
        """Fire when ``condition`` becomes true; re-arm when it becomes false."""
        if not condition:
            self._active.discard(name)
            return []
        if name in self._active:
            return []
        self._active.add(name)
        return [make()]
