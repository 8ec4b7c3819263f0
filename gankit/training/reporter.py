"""What a run tells the user and its record: training scalars, evaluations, alerts, notices, the end.

Everything goes to the loggers (``metrics.jsonl`` and wandb) and, one line
each, to the console: the progress display every ``train.log_every`` steps,
every evaluation as it arrives (``eval at step 500: fid = 41.2, swd = 3.1``),
every alert and notice. Under torchrun the other processes report nothing.
"""

from __future__ import annotations

from typing import Any

from gankit.loggers.factory import make_loggers
from gankit.recipe.load import resolved
from gankit.training.health import Alert
from gankit.training.progress import Progress


def eval_line(step: int, rows: list[dict[str, Any]]) -> str:
    """``"eval at step 500: fid10k = 41.23 [40.71, 41.8], kid10k = 0.0123 ± 0.0011 [0.0109, 0.0138]"``: each
    metric named with its sample budget, its 95% interval in brackets."""
    from gankit.eval.rows import shown_name, value_text

    return f"eval at step {step}: " + ", ".join(f"{shown_name(row)} = {value_text(row)}" for row in rows)


class Reporter:
    """The run's loggers and its console, behind one small interface."""

    def __init__(self, recipe, run_dir, info: dict[str, Any], *, main: bool, resumed: bool, total: int, step: int):
        self.logger = make_loggers(recipe, run_dir, job_type="train", resumed=resumed)
        self.logger.log_config({**resolved(recipe), "gankit": info})
        self.progress = Progress(recipe.log.progress if main else "none", total, step)

    def step_done(self, step: int) -> None:
        self.progress.update(step)

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
