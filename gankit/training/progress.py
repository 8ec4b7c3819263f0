"""What a person watching a run sees: a progress bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

LABELS = {"loss_d": "Loss_D", "loss_g": "Loss_G", "d_real": "D(x)", "d_fake": "D(G(z))", "aug_p": "p"}


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Progress:
    """``mode``: bar, lines, none, or auto (a bar on a terminal, lines otherwise)."""

    def __init__(self, mode: str, total: int, start: int):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        self.mode, self.total, self.start = mode, total, start
        self.t0 = time.perf_counter()
        self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True) if mode == "bar" else None

    def update(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)

    def show(self, step: int, epoch: int, scalars: dict[str, float]) -> None:
        shown = {LABELS[k]: f"{scalars[k]:.4f}" for k in LABELS if k in scalars}
        if "img_per_s" in scalars:
            shown["img/s"] = f"{scalars['img_per_s']:.0f}"
        if self.bar is not None:
            self.bar.set_postfix(shown, refresh=False)
        elif self.mode == "lines":
            done = step - self.start
            rate = done / max(time.perf_counter() - self.t0, 1e-9)
            eta = _eta((self.total - step) / rate) if rate > 0 else "?"
            body = "  ".join(f"{k} {v}" for k, v in shown.items())
            print(f"[{step}/{self.total}] epoch {epoch}  {body}  ETA {eta}", file=sys.stderr, flush=True)

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
