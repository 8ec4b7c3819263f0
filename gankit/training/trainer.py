"""The training loop: take a step's real batches, run the GAN step, log, do what is due, repeat.

    gankit run recipes/quickstart.yaml

The parts, each with one job: :mod:`~gankit.training.assemble` builds them
from the recipe, :mod:`~gankit.training.feeding` serves the real batches,
:mod:`~gankit.training.step` is the tutorial's GAN step,
:mod:`~gankit.training.periodic` samples, evaluates and checkpoints,
:mod:`~gankit.training.reporter` tells the record and the console,
:mod:`~gankit.training.state` is what a checkpoint holds. Health: each update
is checked for non-finite values before the optimizer applies it
(``health.on_nonfinite``: stop, or skip the update), and
:class:`~gankit.training.health.HealthMonitor` raises alerts.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import torch

from gankit.core.errors import DataError
from gankit.training import checkpoint as ckpt_io
from gankit.training import periodic, speed
from gankit.training.assemble import assemble
from gankit.training.failures import DISK_ERRORS, disk_error, is_out_of_memory, memory_error
from gankit.training.interrupts import RunInterrupted, StopRequest
from gankit.training.guard import Guard
from gankit.training.nonfinite import TrainingStopped
from gankit.training.reporter import Reporter


class Trainer:
    """Trains a recipe; :meth:`run` returns the run directory."""

    def __init__(self, recipe, *, source: str | None = None, overrides: list[str] = (),
                 resume: dict[str, Any] | None = None, run_dir: Path | None = None):
        self.recipe, self.source, self.overrides = recipe, source, list(overrides)
        self.resume, self.resume_dir = resume, run_dir  # a loaded checkpoint to continue from
        self.job = None

    @property
    def run_dir(self) -> Path | None:
        return self.job.run_dir if self.job is not None else self.resume_dir

    # What a caller may want to look at after (or during) a run.
    G = property(lambda self: self.job.players.G)
    D = property(lambda self: self.job.players.D)
    step = property(lambda self: self.job.counters.step)
    device = property(lambda self: self.job.device)

    def run(self) -> Path:
        try:
            self.start()
            return self._train_to_the_end()
        finally:
            if self.job is not None:
                if self.job.lock is not None:
                    self.job.lock.release()
                self.job.world.leave()  # torchrun's process group, once this rank is done

    def start(self) -> None:
        """Build the run's parts and open its record (what :meth:`run` does before the first step)."""
        try:
            self.job = assemble(self.recipe, source=self.source, overrides=self.overrides, resume=self.resume,
                                run_dir=self.resume_dir)
        except (MemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc):
                raise
            raise memory_error(exc, "setting up the run") from None
        run = self.job
        self.reporter = Reporter(self.recipe, run.run_dir, run.info, main=run.world.is_main,
                                 resumed=self.resume is not None, total=run.total_steps, step=run.counters.step)
        self.guard = run.stepper.guard = Guard(run, self.reporter)

    def train_steps(self, steps: int) -> None:
        """Train ``steps`` more steps in this process, nothing periodic after the last (benchmarks time this)."""
        self._train(StopRequest(), until=self.job.counters.step + steps)

    def _train_to_the_end(self) -> Path:
        run = self.job
        for notice in run.notices:
            self.reporter.notice(run.counters.step, notice)
        if run.evaluator is not None and getattr(run.evaluator, "skipped", None):
            self.reporter.skipped_metrics(run.counters.step, run.evaluator.skipped, run.run_dir,
                                          kept=bool(self.recipe.train.keep_every))
        if self.resume is not None:
            self.reporter.event(run.counters.step, {"event": "resumed", "overrides": self.overrides})
        with StopRequest() as stop:  # until the very end: a second signal anywhere is handled here
            try:
                self._run(stop)
            except KeyboardInterrupt:  # a second signal: stop at once (every write is atomic)
                # A write it cut short leaves only its temporary file behind: remove it.
                ckpt_io.remove_stale_temporaries(run.run_dir / "checkpoints")
                raise RunInterrupted(stop.signum or signal.SIGINT, run.run_dir, saved=False) from None
        if run.counters.skipped_images:
            self.reporter.message(f"skipped {run.counters.skipped_images} unreadable images (see metrics.jsonl)")
        if run.nonfinite.skipped:
            self.reporter.message(f"skipped {run.nonfinite.skipped} non-finite updates (see metrics.jsonl)")
        return run.run_dir

    def _run(self, stop: StopRequest) -> None:
        status, error = "failed", None
        try:
            self._train(stop)
            if stop.signum is None:
                periodic.periodic(self.job, self.reporter, self.guard.stop, final=True)
                status = "finished"
                return
            periodic.save_checkpoint(self.job, self.guard.stop)
            status = "interrupted"
            self.reporter.event(self.job.counters.step, {"event": "interrupted",
                                                          "signal": signal.Signals(stop.signum).name})
            raise RunInterrupted(stop.signum, self.job.run_dir, saved=True)
        except (KeyboardInterrupt, RunInterrupted):
            status = "interrupted"
            raise
        except TrainingStopped as exc:
            status, error = "diverged", exc
            raise
        except OSError as exc:  # a full or unwritable disk while logging: say where, not a traceback
            error = exc
            if exc.errno not in DISK_ERRORS:
                raise
            raise disk_error(exc, self.job.run_dir) from None
        except (MemoryError, RuntimeError) as exc:
            error = exc
            if (user := speed.user_error(exc, self.recipe.train)) is not None:  # train.compile, train.deterministic
                raise user from None
            if not is_out_of_memory(exc):
                raise
            raise memory_error(exc, f"training step {self.job.counters.step + 1}") from None
        except Exception as exc:
            error = exc
            raise
        finally:
            self.reporter.close(status, error)

    def _train(self, stop: StopRequest, until: int | None = None) -> None:
        run, t = self.job, self.recipe.train
        window_images, window_t0 = 0, time.perf_counter()
        end = run.total_steps if until is None else until
        more = lambda: run.counters.step < end  # noqa: E731
        for group in run.feeder.groups(more, lambda: self._stopping(stop), self._bad_images):
            step = run.counters.step
            self.scheduled_values = run.scheduled.apply(run.counters.images_seen)
            log_now = (step + 1) % t.log_every == 0 or step + 1 == run.total_steps
            stats = run.stepper(group, step, grad_norms=log_now)
            images = run.stepper.images(group)  # D's batches (G's own real batch is not counted)
            run.counters.step += 1
            run.counters.images_seen += images * run.world.size
            window_images += images
            self.reporter.step_done(run.counters.step)
            if stats is not None:  # None: an update was skipped (non-finite values)
                run.nonfinite.step_done()
                run.monitor.observe(stats)
            if log_now and stats is not None:
                self._log(stats, window_images, time.perf_counter() - window_t0)
                window_images, window_t0 = 0, time.perf_counter()
            if run.counters.step < end:
                t0 = time.perf_counter()
                periodic.periodic(run, self.reporter, self.guard.stop, final=False)
                window_t0 += time.perf_counter() - t0  # img/s measures training alone

    def _stopping(self, stop: StopRequest) -> bool:
        """Whether a stop was asked for; under torchrun, on any rank (all stop at the same step)."""
        if self.job.world.distributed:
            stop.signum = self.job.world.max(stop.signum or 0) or None
        return stop.signum is not None

    def _log(self, stats: dict[str, torch.Tensor], images: int, seconds: float) -> None:
        run = self.job
        # Under torchrun: the mean over the ranks' batches, and the images/s of all ranks together.
        scalars = {k: float(v) for k, v in run.world.mean(stats).items()}
        scalars.update(epoch=run.feeder.epoch, lr_g=run.players.opt_g.param_groups[0]["lr"],
                       lr_d=run.players.opt_d.param_groups[0]["lr"],
                       img_per_s=images * run.world.size / max(seconds, 1e-9), kimg=run.counters.images_seen / 1000,
                       **self.scheduled_values)
        self.reporter.scalars(run.counters.step, run.feeder.epoch, scalars)
        self.reporter.alerts(run.counters.step, run.monitor.at_log(run.counters.step, scalars))

    def _bad_images(self, bad) -> None:
        run = self.job
        if self.recipe.data.on_bad_image == "error":
            raise DataError(f"cannot read image '{bad[0].path}': {bad[0].reason}\n"
                            "    fix or remove the file, or set data.on_bad_image: skip to skip and count unreadable images")
        run.counters.skipped_images += len(bad)
        self.reporter.event(run.counters.step, {"event": "skipped_images", "count": len(bad),
                                                "files": [b.path for b in bad[:10]], "total": run.counters.skipped_images})


def train(recipe, **kwargs: Any) -> Path:
    """Train ``recipe``; see :class:`Trainer` for the keyword arguments."""
    return Trainer(recipe, **kwargs).run()
