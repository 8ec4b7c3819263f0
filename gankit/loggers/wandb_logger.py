"""The Weights & Biases logger: one wandb run per gankit run.

The wandb run lives inside the gankit run directory (``<run dir>/wandb/``);
its id is kept in ``<run dir>/wandb_run_id`` so ``gankit run --resume``
continues the same wandb run. wandb is an observer, never a dependency of
training: starting is bounded by ``log.wandb.init_timeout`` and falls back to
offline, and every later wandb call is guarded, so a network or wandb failure
costs at most a one-line notice and the rest of the wandb record, never the
run. The local record (``metrics.jsonl``) is always complete.
"""

from __future__ import annotations

import math
import secrets
import string
import sys
from pathlib import Path
from typing import Any

from gankit.loggers.base import Logger
from gankit.rundir.metrics import ROW_KEYS, higher_is_better, read_metrics

# The file holding a train run's wandb id; other job types (eval) get their own.
ID_FILE = "wandb_run_id"
# wandb marks a run failed for any non-zero exit code; 255 is what wandb itself uses for Ctrl-C.
EXIT_CODES = {"finished": 0, "interrupted": 255, "failed": 1}
# Seconds run.finish() may spend uploading before giving up (the data stays on disk for `wandb sync`).
FINISH_TIMEOUT = 600.0


def notice(text: str) -> None:
    """The one-line notices about wandb, on stderr next to the progress output."""
    print(f"wandb: {text}", file=sys.stderr, flush=True)


def new_run_id() -> str:
    # secrets, not the seeded generators: naming the wandb run must not move any random stream.
    chars = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(chars) for _ in range(8))


def id_file(run_dir: Path, job_type: str) -> Path:
    return Path(run_dir) / (ID_FILE if job_type == "train" else f"wandb_{job_type}_run_id")


def run_id_for(run_dir: Path, job_type: str, resumed: bool) -> str:
    """The stored wandb id when resuming, else a new one (stored for a later resume)."""
    path = id_file(run_dir, job_type)
    if resumed and path.is_file():
        stored = path.read_text(encoding="utf-8").strip()
        if stored:
            return stored
    run_id = new_run_id()
    path.write_text(run_id + "\n", encoding="utf-8")
    return run_id


def first_line(exc: BaseException) -> str:
    # wandb errors can span lines; a notice is one line.
    return (str(exc).strip().splitlines() or [""])[0]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class WandbLogger(Logger):
    """Sends what the trainer reports to one wandb run; see :func:`start_wandb`."""

    def __init__(self, wandb, run, run_dir: Path, *, log_checkpoint: bool = False, backfill: bool = False):
        self.wandb, self.run = wandb, run
        # Rows of earlier steps added to a finished run (gankit eval --log): wandb refuses steps below its
        # current one, so those rows carry their step as eval/step, the x-axis of every eval/ chart.
        self.backfill = backfill
        self.ok = True  # False after a wandb failure: later calls are skipped, finish() still tried
        self.run_dir = Path(run_dir)
        self.log_checkpoint = log_checkpoint
        self.best: dict[str, tuple[float, int]] = {}
        self.notices: list[str] = []
        self.provenance: dict[str, dict] = {}
        # On resume, the best values so far are in the local record, not in this process.
        for row in read_metrics(self.run_dir):
            if row.get("kind") == "eval":
                self._track_best(row)

    # -- guarding: a wandb failure turns wandb off for this run, never stops training
    def _call(self, what: str, fn) -> None:
        if self.run is None or not self.ok:
            return
        try:
            fn()
        except Exception as exc:  # anything wandb raises (network, service gone, bad value)
            self.ok = False
            notice(f"{what} failed ({type(exc).__name__}: {first_line(exc)}); wandb logging is off for the "
                   "rest of this run, the local record (metrics.jsonl) continues")

    # -- the Logger interface
    def log_config(self, config):
        self._call("wandb config", lambda: self.run.config.update(dict(config), allow_val_change=True))

    def log_scalars(self, step, scalars):
        data = {f"train/{k}": v for k, v in scalars.items() if _is_number(v)}
        self._call("wandb log", lambda: self.run.log(data, step=step))

    def log_images(self, step, images):
        def log():
            data = {k: self.wandb.Image(str(p), caption=f"step {step}") for k, p in images.items()}
            self.run.log(data, step=step)

        self._call("wandb image", log)

    def log_metrics(self, step, rows):
        self._call("wandb metrics", lambda: self._log_metrics(step, rows))

    def _log_metrics(self, step, rows):
        data = {}
        for row in rows:
            name = str(row.get("metric"))
            prov = {k: v for k, v in row.items() if k not in ROW_KEYS}
            self.provenance[name] = prov
            if _is_number(row.get("value")):
                data[f"eval/{name}"] = row["value"]
                if _is_number(row.get("std")):
                    data[f"eval/{name}_std"] = row["std"]
                if _is_number(row.get("ci_low")) and _is_number(row.get("ci_high")):  # its 95% bootstrap interval
                    data[f"eval/{name}_ci_low"], data[f"eval/{name}_ci_high"] = row["ci_low"], row["ci_high"]
                self._track_best({**row, "step": step})
            else:
                # A skipped metric: say why in the summary so the run table shows it.
                reason = prov.get("skipped") or prov.get("reason") or prov.get("error") or "no value"
                self.run.summary[f"eval/{name}_skipped"] = str(reason)
        # Provenance in config so runs can be filtered on how their metric was computed.
        self.run.config.update({"provenance": self.provenance}, allow_val_change=True)
        for name, (value, at) in self.best.items():
            self.run.summary[f"best/{name}"] = value
            self.run.summary[f"best/{name}_step"] = at
        if data and self.backfill:
            self.run.define_metric("eval/step")
            self.run.define_metric("eval/*", step_metric="eval/step")
            self.run.log({**data, "eval/step": step})
        elif data:
            self.run.log(data, step=step)

    def _track_best(self, row: dict) -> None:
        name, value = str(row.get("metric")), row.get("value")
        if not _is_number(value):
            return
        higher = higher_is_better(name, [row])
        old = self.best.get(name)
        if old is None or (value > old[0] if higher else value < old[0]):
            self.best[name] = (float(value), int(row.get("step") or 0))

    def log_event(self, step, event):
        def log():
            kind = str(event.get("event") or event.get("type") or "event")
            self.run.summary[f"events/{kind}"] = {"step": step, **event}  # the latest of each kind
            if kind == "notice":  # every notice (a skipped metric, ...) stays visible in the run table
                self.notices.append(str(event.get("message", "")))
                self.run.summary["notices"] = list(self.notices)

        self._call("wandb event", log)

    def finish(self, status, error=None):
        if self.run is None:
            return
        if status is not None:
            self._call("wandb summary", lambda: self.run.summary.update(
                {"gankit_status": status, **({"gankit_error": error} if error else {})}))
        if self.log_checkpoint and status is not None:
            self._call("wandb checkpoint artifact", lambda: self._log_checkpoint(status))
        run, self.run = self.run, None
        try:
            run.finish(exit_code=EXIT_CODES.get(status, 1) if status is not None else 0)
        except Exception as exc:
            notice(f"finishing the wandb run failed ({type(exc).__name__}: {first_line(exc)}); "
                   f"its data is under {self.run_dir / 'wandb'}")

    def _log_checkpoint(self, status: str) -> None:
        path = self.run_dir / "checkpoints" / "last.pt"
        if not path.is_file():
            return
        artifact = self.wandb.Artifact(f"checkpoint-{self.run.id}", type="model",
                                       metadata={"gankit_run": self.run_dir.name, "status": status})
        artifact.add_file(str(path))
        self.run.log_artifact(artifact, aliases=["latest", status])


def start_wandb(wandb, cfg, run_dir: Path, *, mode: str, name: str, group: str, job_type: str,
                resumed: bool, backfill: bool = False) -> WandbLogger | None:
    """Start the wandb run in ``mode`` (online/offline); online falls back to offline.

    Prints one line saying where the run is; None (with a notice) when wandb
    cannot start at all.
    """
    run_dir = Path(run_dir)
    run_id = run_id_for(run_dir, job_type, resumed)
    kwargs = dict(
        project=cfg.project, entity=cfg.entity, dir=str(run_dir), id=run_id, resume="allow", name=name,
        group=group, job_type=job_type, tags=list(cfg.tags) or None, notes=cfg.notes,
    )

    def init(mode_: str):
        # silent: gankit prints its own one line; console off: wandb never wraps stdout/stderr.
        settings = wandb.Settings(init_timeout=cfg.init_timeout, finish_timeout=FINISH_TIMEOUT,
                                  silent=True, console="off")
        return wandb.init(mode=mode_, settings=settings, **kwargs)

    run = None
    if mode == "online":
        try:
            run = init("online")
        except Exception as exc:
            notice(f"cannot start online ({type(exc).__name__}: {first_line(exc)}); falling back to offline")
            try:  # the failed start still holds the run id in wandb's service: restart the service
                wandb.teardown()
            except Exception:
                pass
    if run is None:
        try:
            run = init("offline")
        except Exception as exc:
            notice(f"unavailable ({type(exc).__name__}: {first_line(exc)}); the local record continues")
            return None
        where = Path(run.dir).parent  # run.dir is <offline run>/files
        notice(f"offline run in {where}; upload it later with: wandb sync {where}")
    else:
        notice(f"logging to {getattr(run, 'url', None) or 'wandb'} (run {run_id})")
    return WandbLogger(wandb, run, run_dir, log_checkpoint=cfg.log_checkpoint, backfill=backfill)
