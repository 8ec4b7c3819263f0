"""The logger interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Logger:
    """Receives what a run reports. Every method is optional to implement."""

    def log_config(self, config: dict[str, Any]) -> None:
        """The resolved recipe plus versions, once at the start."""

    def log_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """Training scalars (losses, D(x), D(G(z)), images/s, ...) at ``step``."""

    def log_images(self, step: int, images: dict[str, Path]) -> None:
        """Image files written at ``step`` (``{"samples": path/to/grid.png}``)."""

    def log_metrics(self, step: int, rows: list[dict[str, Any]]) -> None:
        """Evaluation results at ``step``, one row per metric with its provenance."""

    def log_event(self, step: int, event: dict[str, Any]) -> None:
        """A notable event (resume, skipped images, alerts) at ``step``."""

    def finish(self, status: str | None, error: dict | None = None) -> None:
        """The run ended: ``finished``, ``interrupted``, ``diverged`` or ``failed`` (with ``error``: the
        failure's ``type`` and ``message``); None: rows were added after the fact, the run's status stands."""


class LoggerGroup(Logger):
    """Fans every call out to several loggers."""

    def __init__(self, loggers: list[Logger]):
        self.loggers = list(loggers)

    def log_config(self, config):
        for lg in self.loggers:
            lg.log_config(config)

    def log_scalars(self, step, scalars):
        for lg in self.loggers:
            lg.log_scalars(step, scalars)

    def log_images(self, step, images):
        for lg in self.loggers:
            lg.log_images(step, images)

    def log_metrics(self, step, rows):
        for lg in self.loggers:
            lg.log_metrics(step, rows)

    def log_event(self, step, event):
        for lg in self.loggers:
            lg.log_event(step, event)

    def finish(self, status, error=None):
        for lg in self.loggers:
            lg.finish(status, error)
