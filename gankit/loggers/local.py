"""The local record: ``metrics.jsonl`` in the run directory, one JSON object a line.

Rows have a ``kind``: ``train`` (scalars every ``train.log_every`` steps),
``eval`` (one metric result with its provenance), ``event`` (resume, skipped
images, ...), ``end`` (final status). Each line is flushed as written so a
killed run keeps everything it logged.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from gankit.loggers.base import Logger
from gankit.runs.record import read_metrics  # noqa: F401  (it lives with the run record; this import is kept)


def _clean(value):
    # JSON has no NaN/inf: write them as strings so the file stays parseable.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class LocalLogger(Logger):
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "metrics.jsonl"
        self._file = open(self.path, "a", encoding="utf-8")

    def _write(self, row: dict) -> None:
        row = {k: _clean(v) for k, v in row.items()}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def log_scalars(self, step, scalars):
        self._write({"kind": "train", "step": step, "time": time.time(), **scalars})

    def log_metrics(self, step, rows):
        for row in rows:
            self._write({"kind": "eval", "step": step, "time": time.time(), **row})

    def log_event(self, step, event):
        self._write({"kind": "event", "step": step, "time": time.time(), **event})

    def finish(self, status, error: dict | None = None):
        """Close the record with an ``end`` row (status, and the failure's type and message); with
        ``status=None`` (rows added after the fact by ``gankit eval --log``) no end row is written."""
        if not self._file.closed:
            if status is not None:
                self._write({"kind": "end", "status": status, "time": time.time(), **({"error": error} if error else {})})
            self._file.close()
