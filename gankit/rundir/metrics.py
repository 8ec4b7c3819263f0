"""``metrics.jsonl``: a run's record, one JSON object a line, written as the run goes and streamed back.

    record = MetricsFile(run_dir)               # appends; each row flushed as written
    record.train(step, {"loss_d": 0.7, ...})    # kind "train": scalars every train.log_every steps
    record.eval(step, rows)                     # kind "eval": one metric value with its provenance
    record.event(step, {"event": "resumed"})    # kind "event": resume, skipped images, alerts, ...
    record.end("finished")                      # kind "end": the final status (and the failure)
    for row in iter_metrics(run_dir, ["eval"]): ...

A killed run keeps every row it flushed; a row it tore in half is cut off
when the run resumes (:func:`repair_record`) and skipped by readers. JSON has
no NaN or infinity: they are written as the strings "nan", "inf".

An eval row is ``metric``, ``value``, ``std``, ``step``, ``higher_is_better``
(its metric's direction, so that readers need not import the metric) plus
its provenance: every key not in :data:`ROW_KEYS`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

FILE = "metrics.jsonl"
# Keys of an eval row that are not provenance (they change with every evaluation, or belong to the metric).
ROW_KEYS = {"kind", "step", "time", "metric", "value", "std", "eval_seconds", "higher_is_better",
            "feature_seconds", "ci_low", "ci_high", "ci_seconds"}
# Records written before eval rows carried ``higher_is_better``: the direction of the metrics gankit had then,
# as their classes declare it (tests/test_metric_registry.py checks that the two agree). Any other: lower is better.
EARLIER_HIGHER_IS_BETTER = {"is", "inception_score", "precision", "recall", "density", "coverage"}


def _clean(value):
    # JSON has no NaN/inf: write them as strings so the file stays parseable.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricsFile:
    """Appends rows to ``RUN/metrics.jsonl``, each flushed as written."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / FILE
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps({k: _clean(v) for k, v in row.items()}) + "\n")
        self._file.flush()

    def train(self, step: int, scalars: dict[str, Any]) -> None:
        self.write({"kind": "train", "step": step, "time": time.time(), **scalars})

    def eval(self, step: int | None, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.write({"kind": "eval", "step": step, "time": time.time(), **row})

    def event(self, step: int, event: dict[str, Any]) -> None:
        self.write({"kind": "event", "step": step, "time": time.time(), **event})

    def end(self, status: str, error: dict | None = None) -> None:
        self.write({"kind": "end", "status": status, "time": time.time(), **({"error": error} if error else {})})

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        self._file.close()


def iter_metrics(run_dir: str | Path, kinds: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
    """The rows of a run's ``metrics.jsonl`` one at a time (a torn or damaged line is skipped)."""
    wanted = set(kinds) if kinds else None
    path = Path(run_dir) / FILE
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with f:
        for line in f:
            if wanted is not None and '"kind": "' in line and not any(f'"kind": "{k}"' in line for k in wanted):
                continue  # a cheap pre-filter, before parsing: MetricsFile writes `"kind": "..."`
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and (wanted is None or row.get("kind") in wanted):
                yield row


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every row of a run's ``metrics.jsonl`` (a torn last line is ignored)."""
    return list(iter_metrics(run_dir))


def number(value: Any) -> float | None:
    """A finite float, or None (strings such as "nan", bools, missing)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def higher_is_better(metric: str, rows: Iterable[dict[str, Any]] = ()) -> bool:
    """Whether larger values of ``metric`` are better, as its eval ``rows`` recorded it.

    Each eval row carries its metric class's ``higher_is_better``, so a
    reader needs neither the metric's plugin nor a list of names. Rows
    written before that (none of ``rows`` has it) fall back to the metrics
    gankit had then (``is``, ``prdc/precision`` ...); any other is better lower.
    """
    for row in rows:
        if row.get("metric") == metric and isinstance(row.get("higher_is_better"), bool):
            return row["higher_is_better"]
    return metric.lower().rpartition("/")[2] in EARLIER_HIGHER_IS_BETTER


def repair_record(run_dir: Path) -> bool:
    """Cut a torn last line (a run killed mid-write) off ``metrics.jsonl``; True when it had one."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        return False
    data = path.read_bytes()
    end = len(data)
    if data.endswith(b"\n"):
        last_start = data.rfind(b"\n", 0, end - 1) + 1
        try:
            json.loads(data[last_start:end])
            return False
        except ValueError:
            end = last_start
    else:
        end = data.rfind(b"\n") + 1  # the text after the last newline is a row cut short
    if end == len(data):
        return False
    with open(path, "r+b") as f:
        f.truncate(end)
    return True
