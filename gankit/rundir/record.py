"""A run directory, read back: what ``gankit compare``, ``gankit report`` and ``gankit runs`` read.

    run = gankit.load_run("runs/quickstart/<run id>")
    run.status, run.recipe["loss"]["name"], run.provenance["overrides"]
    for row in run.iter_rows("eval"):      # metrics.jsonl, streamed
        print(row["metric"], row["value"])
    run.final("swd"), run.samples[-1], run.checkpoints

Nothing here loads a checkpoint: a run is its ``recipe.yaml`` and
``metrics.jsonl`` (streamed, never held whole unless asked, see
:mod:`gankit.rundir.metrics` for its rows) plus the names of its files, so
thousands of runs read in seconds.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gankit.core.errors import GankitError
from gankit.rundir.metrics import higher_is_better, iter_metrics, number

# The provenance that must match for two runs' values of a metric to be compared or pooled.
MATCHING_PROVENANCE = ("feature_extractor", "weights_sha256", "input_resolution", "resize",
                       "num_real", "num_fake", "reference")
# Train-row scalars the digest keeps (curves); everything else of a train row is skipped.
CURVE_KEYS = ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "lr_d", "lr_g", "img_per_s")
# Metrics listed first when choosing a default; the rest follow in the order the runs recorded them.
PREFERRED_METRICS = ("fid", "is", "kid")
SWEEP_FILE = "sweep.yaml"


def is_run_dir(path: Path) -> bool:
    """A run directory holds recipe.yaml and metrics.jsonl or checkpoints/."""
    return (path / "recipe.yaml").is_file() and ((path / "metrics.jsonl").is_file() or (path / "checkpoints").is_dir())


def is_sweep_dir(path: Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def walk_runs(root: Path) -> list[Path]:
    """Every run directory under ``root``, found recursively (not inside run directories), sorted."""
    found = []
    for folder, dirs, _ in os.walk(root):
        here = Path(folder)
        if is_run_dir(here):
            found.append(here)
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("wandb", "__pycache__"))
    return sorted(found)


@dataclass
class Digest:
    """What one streaming pass over metrics.jsonl keeps: curves, eval rows, ends, events."""

    steps: int = 0  # the last train step logged, or the step an interrupted run saved when later
    curves: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)  # CURVE_KEYS -> (steps, values)
    evals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # metric -> its rows, in file order
    events: list[dict[str, Any]] = field(default_factory=list)
    status: str = "running/killed"


def digest(rows: Iterable[dict[str, Any]]) -> Digest:
    d = Digest()
    ended = False
    curves = {key: ([], []) for key in CURVE_KEYS}
    isfinite = math.isfinite
    for row in rows:
        kind = row.get("kind")
        if kind == "train":
            step = row.get("step")
            if step.__class__ is not int:
                continue
            if step > d.steps:
                d.steps = step
            for key, (steps, values) in curves.items():  # inlined number(): a thousand runs' rows pass here
                value = row.get(key)
                if (value.__class__ is float or value.__class__ is int) and isfinite(value):
                    steps.append(step)
                    values.append(float(value))
        elif kind == "eval":
            d.evals.setdefault(str(row.get("metric")), []).append(row)
        elif kind == "event":
            d.events.append(row)
            if row.get("event") == "resumed":
                ended = False  # resumed after an end: running again (or killed since)
            elif row.get("event") == "interrupted" and row.get("step").__class__ is int:
                d.steps = max(d.steps, row["step"])  # its checkpoint's step, past the last logged row
        elif kind == "end":
            d.status, ended = str(row.get("status")), True
    d.curves = {key: _one_per_step(*curve) for key, curve in curves.items() if curve[0]}
    if not ended:
        d.status = "running/killed"
    return d


def _one_per_step(steps: list[int], values: list[float]) -> tuple[list[int], list[float]]:
    """A curve with one value per step, the last logged, in step order: a resumed run logs again the steps
    between its checkpoint and where it was killed."""
    if all(a < b for a, b in zip(steps, steps[1:])):
        return steps, values
    at = dict(zip(steps, values))
    ordered = sorted(at)
    return ordered, [at[s] for s in ordered]


def fill_in(run: "RunRecord", event: dict[str, Any], where: str | None = None) -> str:
    """The command a metrics_skipped event says fills the metrics in, for this run (or with ``where`` in its place)."""
    fill = str(event.get("fill_in") or "gankit eval RUN --all-checkpoints --log")
    where = str(run.path) if where is None else where
    # the event may name the run absolutely while run.path is relative (or the reverse): the longer first,
    # so that an absolute path does not become "/cwd/RUN"
    for spelling in sorted({str(run.path.resolve()), str(run.path)}, key=len, reverse=True):
        fill = fill.replace(spelling, "RUN")
    return re.sub(r"\bRUN\b", lambda _: where, fill)


@dataclass
class RunRecord:
    """One run directory: its resolved recipe, provenance, metrics rows, checkpoints and sample grids.

    ``rows`` is None for a record read from disk: :meth:`iter_rows` then
    streams ``metrics.jsonl`` each time; give a list to work from memory.
    """

    path: Path
    recipe: dict[str, Any] = field(default_factory=dict)  # the resolved recipe (without the gankit: key)
    rows: list[dict[str, Any]] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)  # recipe.yaml's gankit: key (versions, overrides)
    sweep_status: str | None = None  # the status sweep.yaml records, when the run belongs to a sweep
    _digest: Digest | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.path = Path(self.path)
        if "gankit" in self.recipe:
            self.recipe = dict(self.recipe)
            self.provenance = self.provenance or (self.recipe.pop("gankit") or {})
            self.recipe.pop("gankit", None)

    # -- identity
    @property
    def id(self) -> str:
        return str(self.provenance.get("run_id") or self.path.name)

    run_id = id

    @property
    def name(self) -> str:
        return str(self.recipe.get("name", "?"))

    @property
    def overrides(self) -> list[str]:
        return [str(o) for o in self.provenance.get("overrides") or []]

    # -- metrics.jsonl
    def iter_rows(self, *kinds: str) -> Iterator[dict[str, Any]]:
        """The metrics rows (of these kinds), streamed from the file unless held in memory."""
        if self.rows is None:
            yield from iter_metrics(self.path, kinds or None)
        else:
            yield from (r for r in self.rows if not kinds or r.get("kind") in kinds)

    def digest(self) -> Digest:
        if self._digest is None:
            self._digest = digest(self.iter_rows())
        return self._digest

    @property
    def status(self) -> str:
        """finished, interrupted, failed, diverged (the last end row), or running/killed."""
        return self.sweep_status or self.digest().status

    @property
    def train_rows(self) -> list[dict[str, Any]]:
        return list(self.iter_rows("train"))

    @property
    def eval_rows(self) -> list[dict[str, Any]]:
        return list(self.iter_rows("eval"))

    @property
    def metrics(self) -> list[str]:
        """The metrics with at least one value, in the order first recorded."""
        return [m for m, rows in self.digest().evals.items() if any(number(r.get("value")) is not None for r in rows)]

    def final_row(self, metric: str) -> dict[str, Any] | None:
        """The metric's final row: the highest step's, the last written among equal steps."""
        rows = [r for r in self.digest().evals.get(metric, []) if number(r.get("value")) is not None]
        if not rows:
            return None
        return max(enumerate(rows), key=lambda ir: (ir[1].get("step") if isinstance(ir[1].get("step"), int)
                                                     else -1, ir[0]))[1]

    def final(self, metric: str) -> float | None:
        row = self.final_row(metric)
        return None if row is None else number(row["value"])

    def best(self, metric: str) -> float | None:
        values = [v for r in self.digest().evals.get(metric, []) if (v := number(r.get("value"))) is not None]
        if not values:
            return None
        return max(values) if self.higher_is_better(metric) else min(values)

    def higher_is_better(self, metric: str) -> bool:
        """The metric's direction, as this run's eval rows recorded it."""
        return higher_is_better(metric, self.digest().evals.get(metric, []))

    def skipped_metrics(self) -> list[dict[str, Any]]:
        """The run's ``metrics_skipped`` events: which metrics, why, and how to fill them in."""
        return [e for e in self.digest().events if e.get("event") == "metrics_skipped"]

    # -- files
    @property
    def checkpoints(self) -> list[Path]:
        return sorted((self.path / "checkpoints").glob("*.pt"))

    @property
    def samples(self) -> list[Path]:
        """The fixed-noise grids, oldest first."""
        return sorted((self.path / "samples").glob("step_*.png"))


def higher_is_better_in(metric: str, runs: Iterable[RunRecord]) -> bool:
    """Whether larger values of ``metric`` are better, as these runs' eval rows recorded it."""
    return higher_is_better(metric, (row for run in runs for row in run.digest().evals.get(metric, [])))


def read_recipe(path: Path) -> dict[str, Any]:
    file = Path(path) / "recipe.yaml"
    if not file.is_file():
        return {}
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise GankitError(f"'{file}' is not valid YAML: {exc}") from None
    return data if isinstance(data, dict) else {}


def load_run(run_dir: str | Path) -> RunRecord:
    """The run at ``run_dir``; its metrics rows are streamed when asked for, never a checkpoint loaded."""
    path = Path(run_dir)
    if not path.is_dir() or not is_run_dir(path):
        raise GankitError(f"'{path}' is not a gankit run directory (it has no recipe.yaml with metrics.jsonl "
                          "or checkpoints/); give one such as runs/quickstart/<run id>")
    return RunRecord(path, read_recipe(path))
