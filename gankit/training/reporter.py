"""What a run tells the user and its record: training scalars, evaluations, alerts, notices, the end.

Everything goes to the loggers (``metrics.jsonl`` and wandb) and, one line
each, to the console: the progress display every ``train.log_every`` steps
(a bar on a terminal, plain lines elsewhere), every evaluation as it arrives
(``eval at step 500: fid = 41.2, swd = 3.1``), every alert and notice. Under
torchrun the other processes report nothing. The trainer never talks to a
logger but through here, and never imports wandb.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from gankit.loggers.factory import make_loggers
from gankit.recipe.load import resolved
from gankit.training.health import Alert

LABELS = {"loss_d": "Loss_D", "loss_g": "Loss_G", "d_real": "D(x)", "d_fake": "D(G(z))", "aug_p": "p"}


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython's ZMQ shell), where tqdm draws a widget bar."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return type(shell).__name__ == "ZMQInteractiveShell"


class Progress:
    """``mode``: bar, lines, none, or auto (a bar on a terminal or in a notebook, lines otherwise)."""

    def __init__(self, mode: str, total: int, start: int):
        notebook = in_notebook()
        if mode == "auto":
            mode = "bar" if notebook or sys.stderr.isatty() else "lines"
        self.mode, self.total, self.start = mode, total, start
        self.t0 = time.perf_counter()
        bar = tqdm
        if notebook:  # tqdm's notebook bar (an ipywidgets widget; tqdm falls back to text without ipywidgets)
            from tqdm.auto import tqdm as bar
        self.bar = bar(total=total, initial=start, unit="step", dynamic_ncols=True) if mode == "bar" else None

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


def eval_line(step: int, rows: list[dict[str, Any]]) -> str:
    """``"eval at step 500: fid10k = 41.23 [40.71, 41.8], kid10k = 0.0123 ± 0.0011 [0.0109, 0.0138]"``: each
    metric named with its sample budget, its 95% interval in brackets."""
    from gankit.eval.rows import shown_name, value_text

    return f"eval at step {step}: " + ", ".join(f"{shown_name(row)} = {value_text(row)}" for row in rows)


# The CPU hint: after HINT_STEPS timed steps (the first, which warms up, not among them), a run on a CPU whose
# estimated time exceeds HINT_SECONDS is told, once, how to make it smaller. A hint, never a change.
HINT_STEPS, HINT_SECONDS = 3, 3600.0


def cpu_hint(recipe, source: str | None, overrides: list[str]) -> str:
    """How to make ``recipe`` CPU-sized: its ``<name>_cpu.yaml`` sibling when there is one, else overrides."""
    sibling = Path(source).with_name(Path(source).stem + "_cpu.yaml") if source else None
    if sibling is not None and sibling.is_file():
        kept = [o for o in overrides if o.startswith(("data.root=", "out_dir=", "log."))]
        return "the recipe sized for a CPU: gankit run " + " ".join([str(sibling), *kept])
    shrink = [f"data.image_size={recipe.data.image_size // 2}"] if recipe.data.image_size >= 64 else []
    for part, key in ((recipe.generator, "ngf"), (recipe.discriminator, "ndf")):
        width = part.args.get(key)
        if isinstance(width, int) and width > 16:
            shrink.append(f"{'generator' if key == 'ngf' else 'discriminator'}.{key}={width // 2}")
    return "smaller networks and images train far faster: add " + " ".join(shrink or ["train.steps=..."])


class SlowRunHint:
    """Times the first steps on a CPU and, when the whole run would take over an hour, says so once."""

    def __init__(self, hint: str | None, total: int, start: int):
        self.hint, self.total, self.start, self.t0 = hint, total, start, None

    def step_done(self, step: int) -> str | None:
        if self.hint is None or step <= self.start:
            return None
        if self.t0 is None:  # the first step compiles, allocates and fills the loader: not timed
            self.t0 = (step, time.perf_counter())
            return None
        timed = step - self.t0[0]
        if timed < HINT_STEPS:
            return None
        per_step = (time.perf_counter() - self.t0[1]) / timed
        hint, self.hint = self.hint, None  # once
        if per_step * (self.total - self.start) <= HINT_SECONDS:
            return None
        return (f"hint: on this CPU the run's {self.total - self.start} steps take about "
                f"{_eta(per_step * (self.total - self.start))} ({per_step:.1f} s a step); {hint}")


class Reporter:
    """The run's loggers and its console, behind one small interface."""

    def __init__(self, recipe, run_dir, info: dict[str, Any], *, main: bool, resumed: bool, total: int, step: int,
                 slow_hint: str | None = None):
        self.logger = make_loggers(recipe, run_dir, job_type="train", resumed=resumed)
        self.logger.log_config({**resolved(recipe), "gankit": info})
        self.progress = Progress(recipe.log.progress if main else "none", total, step)
        self.slow = SlowRunHint(slow_hint if main else None, total, step)

    def step_done(self, step: int) -> None:
        self.progress.update(step)
        if (hint := self.slow.step_done(step)) is not None:
            self.event(step, {"event": "notice", "message": hint}, say=hint)

    def scalars(self, step: int, epoch: int, scalars: dict[str, float]) -> None:
        self.logger.log_scalars(step, scalars)
        self.progress.show(step, epoch, scalars)

    def images(self, step: int, images: dict) -> None:
        self.logger.log_images(step, images)

    def evaluation(self, step: int, rows: list[dict[str, Any]]) -> None:
        self.logger.log_metrics(step, rows)
        if rows:
            self.progress.message(eval_line(step, rows))

    def event(self, step: int, event: dict[str, Any], say: str | None = None) -> None:
        self.logger.log_event(step, event)
        if say:
            self.progress.message(say)

    def notice(self, step: int, text: str) -> None:
        self.event(step, {"event": "notice", "message": text}, say=text)

    def skipped_metrics(self, step: int, skipped: dict[str, str], run_dir, kept: bool) -> None:
        """Metrics that this run cannot measure (no Inception weights), and the command that fills them in."""
        names = sorted(skipped)
        fill_in = f"gankit eval {run_dir} --log" + (" --all-checkpoints" if kept else "")
        self.event(step, {"event": "metrics_skipped", "metrics": names, "reason": next(iter(skipped.values())),
                          "fill_in": fill_in},
                   say=f"eval: {', '.join(names)} will not be measured in this run; to fill them in later where the "
                       f"weights they need are (gankit weights fetch): {fill_in}")

    def alerts(self, step: int, alerts: list[Alert]) -> None:
        for alert in alerts:
            self.event(step, {"event": "alert", "alert": alert.name, "message": alert.message,
                              "evidence": alert.evidence}, say=f"alert at step {step}: {alert.message}")

    def message(self, text: str) -> None:
        self.progress.message(text)

    def close(self, status: str, error: BaseException | None = None) -> None:
        """Close the progress display and the record (the failure's type and message in its end row)."""
        self.progress.close()
        detail = {"type": type(error).__name__, "message": str(error)} if error is not None else None
        try:
            self.logger.finish(status, detail)
        except OSError as exc:
            self.progress.message(f"could not record the end of the run in metrics.jsonl: {exc.strerror or exc}")
