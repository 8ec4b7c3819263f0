"""The local record: the run's ``metrics.jsonl``, through :class:`gankit.rundir.metrics.MetricsFile`.

Rows have a ``kind``: ``train`` (scalars every ``train.log_every`` steps),
``eval`` (one metric result with its provenance), ``event`` (resume, skipped
images, ...), ``end`` (final status). Each line is flushed as written so a
killed run keeps everything it logged. The file's format is the run
directory's (:mod:`gankit.rundir`); this logger only decides what goes in.
"""

from __future__ import annotations

from pathlib import Path

from gankit.loggers.base import Logger
from gankit.rundir.metrics import MetricsFile


class LocalLogger(Logger):
    def __init__(self, run_dir: Path):
        self.record = MetricsFile(run_dir)
        self.path = self.record.path

    def log_scalars(self, step, scalars):
        self.record.train(step, scalars)

    def log_metrics(self, step, rows):
        self.record.eval(step, rows)

    def log_event(self, step, event):
        self.record.event(step, event)

    def finish(self, status, error: dict | None = None):
        """Close the record with an ``end`` row (status, and the failure's type and message); with
        ``status=None`` (rows added after the fact by ``gankit eval --log``) no end row is written."""
        if not self.record.closed:
            if status is not None:
                self.record.end(status, error)
            self.record.close()
