"""The training loop: set up, then step after step (the GAN step, the log, what is due), then the end.

    gankit run recipes/quickstart.yaml
    gankit.train(gankit.load_recipe("recipes/quickstart.yaml"))

Read it as stylegan2-ada's ``training_loop.py`` reads: :meth:`Trainer.start`
sets up (:func:`~gankit.training.assemble.assemble` builds the parts, in the
order that keeps a seed's initial weights); :meth:`Trainer._loop` takes each
step's real batches, sets the scheduled values, runs the GAN step
(:mod:`~gankit.training.step`) and logs; :meth:`Trainer.periodic` does what
is due between steps (sample grid, evaluation, checkpoints), and at the end
all of it once more. The loop's periodic work and its interrupts (Ctrl-C,
SIGTERM) are in this file because they decide when the loop stops; what a
checkpoint holds is :mod:`~gankit.training.state`'s, what the user sees
:mod:`~gankit.training.reporter`'s, non-finite values
:mod:`~gankit.training.nonfinite`'s.

Ctrl-C or SIGTERM asks the run to stop after its step: it saves a
checkpoint and raises :class:`RunInterrupted`. A second signal raises
KeyboardInterrupt wherever the run is; every file the run writes goes to a
temporary and is renamed into place, so stopping mid-write leaves the
previous file whole.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from gankit.core.errors import DataError, GankitError
from gankit.nn.conditional import num_classes
from gankit.recipe.checked import ContractError
from gankit.rundir.checkpoint import atomic_save, copy_checkpoint, remove_stale_temporaries
from gankit.rundir.metrics import higher_is_better
from gankit.sampling import save_grid
from gankit.training import speed
from gankit.training.assemble import assemble
from gankit.training.distributed import resume_command
from gankit.training.health import DISK_ERRORS, disk_error, is_out_of_memory, memory_error
from gankit.training.nonfinite import Guard, TrainingStopped, bad_weights, kept_checkpoint, weights_finite
from gankit.training.reporter import Pictures, Reporter, cpu_hint


class RunInterrupted(Exception):
    """The run was stopped by SIGINT/SIGTERM; a checkpoint was saved (unless stopped twice)."""

    def __init__(self, signum: int, run_dir: Path, saved: bool):
        self.exit_code = 128 + signum  # 130 for Ctrl-C, 143 for SIGTERM
        self.run_dir = run_dir
        how = "checkpoint saved" if saved else "stopped at once, last checkpoint kept"
        super().__init__(f"interrupted ({signal.Signals(signum).name}): {how}; resume with: {resume_command(run_dir)}")


class StopRequest:
    """Turns the first SIGINT/SIGTERM into a request to stop after the current step; a second stops at once."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def every(interval: int | None, step: int) -> bool:
    return bool(interval) and step % interval == 0


class Trainer:
    """Trains a recipe; :meth:`run` returns the run directory. ``job``: the parts it trains (see ``assemble``)."""

    def __init__(self, recipe, *, source: str | None = None, overrides: list[str] = (),
                 resume: dict[str, Any] | None = None, run_dir: Path | None = None):
        self.recipe, self.source, self.overrides = recipe, source, list(overrides)
        self.resume, self.resume_dir = resume, run_dir  # a loaded checkpoint to continue from
        self.job = None

    run_dir = property(lambda self: self.job.run_dir if self.job is not None else self.resume_dir)
    G = property(lambda self: self.job.players.G)
    D = property(lambda self: self.job.players.D)
    step = property(lambda self: self.job.counters.step)
    device = property(lambda self: self.job.device)

    # -- set up ------------------------------------------------------------------------------
    def start(self) -> None:
        """Build the run's parts and open its record (what :meth:`run` does before the first step)."""
        try:
            self.job = job = assemble(self.recipe, source=self.source, overrides=self.overrides, resume=self.resume,
                                      run_dir=self.resume_dir)
        except (MemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc):
                raise
            raise memory_error(exc, "setting up the run") from None
        self.reporter = Reporter(self.recipe, job.run_dir, job.info, main=job.world.is_main,
                                 resumed=self.resume is not None, total=job.total_steps, step=job.counters.step,
                                 slow_hint=cpu_hint(self.recipe, self.source, self.overrides)
                                 if job.device.type == "cpu" else None)
        self.guard = job.gan_step.guard = Guard(job, self.reporter)
        self.pictures = Pictures(job.run_dir)

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> Path:
        """Set up, train to the end (or to a Ctrl-C/SIGTERM: RunInterrupted), return the run directory."""
        try:
            self.start()
            job = self.job
            for notice in job.notices:
                self.reporter.notice(job.counters.step, notice)
            if job.evaluator is not None and job.evaluator.skipped:
                self.reporter.skipped_metrics(job.counters.step, job.evaluator.skipped, job.run_dir,
                                              kept=bool(self.recipe.train.keep_every))
            if self.resume is not None:
                self.reporter.event(job.counters.step, {"event": "resumed", "overrides": self.overrides},
                                    say=f"resuming {job.run_dir} at step {job.counters.step} (epoch {job.feeder.epoch})")
            with StopRequest() as stop:  # until the very end: a second signal anywhere is handled here
                try:
                    self._train_to_the_end(stop)
                except KeyboardInterrupt:  # a second signal: stop at once (every write is atomic)
                    # A write it cut short leaves only its temporary file behind: remove it.
                    remove_stale_temporaries(job.run_dir / "checkpoints")
                    raise RunInterrupted(stop.signum or signal.SIGINT, job.run_dir, saved=False) from None
            if job.counters.skipped_images:
                self.reporter.message(f"skipped {job.counters.skipped_images} unreadable images (see metrics.jsonl)")
            if job.nonfinite.skipped:
                self.reporter.message(f"skipped {job.nonfinite.skipped} non-finite updates (see metrics.jsonl)")
            return job.run_dir
        finally:
            if self.job is not None:
                self.job.feeder.close()  # worker processes end with the run, not when it is collected
                if self.job.lock is not None:
                    self.job.lock.release()
                self.job.gan_step.drop_ddp()
                self.job.world.leave()  # torchrun's process group, once this rank is done

    def train_steps(self, steps: int) -> None:
        """Train ``steps`` more steps in this process, nothing periodic after the last (benchmarks time this)."""
        self._loop(StopRequest(), until=self.job.counters.step + steps)

    def _loop(self, stop: StopRequest, until: int | None = None) -> None:
        job, t, c = self.job, self.recipe.train, self.job.counters
        window_images, window_t0 = 0, time.perf_counter()
        end = job.total_steps if until is None else until
        self.pictures.start()
        for batches in job.feeder.groups(lambda: c.step < end, lambda: self._stopping(stop), self._bad_images):
            self.pictures.keep_real(batches[0][0], t.num_samples)
            scheduled = job.scheduled.apply(c.images_seen)
            log_now = (c.step + 1) % t.log_every == 0 or c.step + 1 == job.total_steps
            stats = job.gan_step(batches, c.step, grad_norms=log_now)  # None: an update was skipped (non-finite)
            images = job.gan_step.images(batches)  # D's batches (G's own real batch is not counted)
            c.step += 1
            c.images_seen += images * job.world.size
            window_images += images
            self.reporter.step_done(c.step)
            if stats is not None:
                job.nonfinite.step_done()
                job.monitor.observe(stats)
            if log_now and stats is not None:
                self._log(stats, scheduled, window_images, time.perf_counter() - window_t0)
                window_images, window_t0 = 0, time.perf_counter()
            if c.step < end:
                t0 = time.perf_counter()
                self.periodic(final=False)
                window_t0 += time.perf_counter() - t0  # img/s measures training alone

    def _stopping(self, stop: StopRequest) -> bool:
        """Whether a stop was asked for; under torchrun, on any rank (all stop at the same step)."""
        if self.job.world.distributed:
            stop.signum = self.job.world.max(stop.signum or 0) or None
        return stop.signum is not None

    def _log(self, stats: dict, scheduled: dict[str, float], images: int, seconds: float) -> None:
        job, c = self.job, self.job.counters
        # Under torchrun: the mean over the ranks' batches, and the images/s of all ranks together.
        scalars = {k: float(v) for k, v in job.world.mean(stats).items()}
        scalars.update(epoch=job.feeder.epoch, lr_g=job.players.opt_g.param_groups[0]["lr"],
                       lr_d=job.players.opt_d.param_groups[0]["lr"], kimg=c.images_seen / 1000,
                       img_per_s=images * job.world.size / max(seconds, 1e-9), **scheduled)
        self.reporter.scalars(c.step, job.feeder.epoch, scalars)
        self.reporter.alerts(c.step, job.monitor.at_log(c.step, scalars))

    def _bad_images(self, bad) -> None:
        c = self.job.counters
        if self.recipe.data.on_bad_image == "error":
            raise DataError(f"cannot read image '{bad[0].path}': {bad[0].reason}\n"
                            "    fix or remove the file, or set data.on_bad_image: skip to skip and count unreadable images")
        # A file is counted once, not once per epoch it comes round again (nor again after a resume).
        new = [b for b in bad if str(b.path) not in c.skipped_files]
        if not new:
            return
        c.skipped_files += [str(b.path) for b in new]
        c.skipped_images = len(c.skipped_files)
        self.reporter.event(c.step, {"event": "skipped_images", "count": len(new),
                                     "files": [str(b.path) for b in new[:10]], "total": c.skipped_images})

    # -- what is due -------------------------------------------------------------------------
    def periodic(self, final: bool) -> None:
        """The grid, the evaluation and the checkpoints due at this step (all of them at the end)."""
        job, t, step = self.job, self.recipe.train, self.job.counters.step
        main = job.world.is_main
        if main and self.pictures.due(step, t.sample_every, final):
            self.save_samples()
        improved = self.evaluate() if job.evaluator is not None and (final or job.evaluator.due(step)) else False
        if final or improved or every(t.checkpoint_every, step) or every(t.keep_every, step):
            path = self.save_checkpoint()
            if main and improved:
                copy_checkpoint(path, path.with_name("best.pt"))
            if main and every(t.keep_every, step):
                copy_checkpoint(path, path.with_name(f"step_{step:07d}.pt"))

    def save_samples(self) -> None:
        job, step = self.job, self.job.counters.step
        z, labels = job.grid
        images = job.sampling.generate(job.players.sampler, z, labels, step)
        path = job.run_dir / "samples" / f"step_{step:07d}.png"
        nrow = len(labels) // num_classes(job.players.G) if labels is not None else None
        self.pictures.drawn(step)
        try:
            save_grid(images, path, nrow=nrow, scale=self.pictures.scale(images))
        except OSError as exc:
            raise GankitError(f"cannot write samples '{path}': {exc.strerror or exc}") from None
        self.reporter.images(step, {"samples": path})
        self.reporter.alerts(step, job.monitor.at_samples(step, images))

    def evaluate(self) -> bool:
        """Measure the sampling generator (every rank its share); True when the best metric improved."""
        job, c = self.job, self.job.counters
        G, classes = job.players.sampler, num_classes(job.players.G)
        # A conditional G is evaluated over every class in turn, told which (per-class metrics read the labels).
        rows = job.evaluator.evaluate(lambda z, labels=None: job.sampling.generate(G, z, labels, c.step), G.nz,
                                      c.step, generator="ema" if job.players.ema is not None else "raw",
                                      share=job.world, classes=classes)
        for row in rows:
            row["batchnorm"] = job.sampling.batchnorm
            if classes is not None:
                row["classes"] = classes
        improved = self._new_best(rows)  # rows come back on rank 0 only
        fid = next((row["value"] for row in rows if row.get("metric") == "fid"), None)
        if job.world.is_main:
            self.reporter.evaluation(c.step, rows)
            if fid is not None:
                self.reporter.alerts(c.step, job.monitor.at_fid(c.step, fid, c.best_fid))
        if fid is not None and (c.best_fid is None or fid < c.best_fid):
            c.best_fid = fid
        return job.world.broadcast(improved) if job.world.distributed else improved

    def _new_best(self, rows: list[dict]) -> bool:
        """Whether ``rows`` hold a new best of ``eval.best_metric`` (default: the first metric the run measured)."""
        c = self.job.counters
        wanted = self.recipe.eval.best_metric or (c.best or {}).get("metric")
        # A metric with several values (prdc) is followed by its first unless one is named (prdc/recall).
        row = next((r for r in rows if wanted is None or r["metric"] == wanted
                    or r["metric"].startswith(wanted + "/")), None)
        if row is None:
            return False
        best = c.best if c.best is not None and c.best["metric"] == row["metric"] else None
        higher = higher_is_better(row["metric"], [row])
        if best is not None and not (row["value"] > best["value"] if higher else row["value"] < best["value"]):
            return False
        c.best = {"metric": row["metric"], "value": row["value"]}
        return True

    def save_checkpoint(self) -> Path:
        """``checkpoints/last.pt`` (the previous one kept as last.prev.pt); never from non-finite weights."""
        job = self.job
        path = job.run_dir / "checkpoints" / "last.pt"
        G, D = job.players.G, job.players.D
        if not job.world.all(weights_finite(G, D)):  # every rank stops alike
            bad = bad_weights(generator=G, discriminator=D)
            self.guard.stop(f"step {job.counters.step}, before saving a checkpoint: {', '.join(bad[:5])}"
                            + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""),
                            "lower the learning rates (optim.g.lr, optim.d.lr)", {"weights": bad[:50]})
        contents = job.state.state_dict()  # every rank: it gathers the ranks' random states
        if job.world.is_main:
            atomic_save(contents, path, keep_previous=True)
        job.last_saved_step = job.counters.step
        return path

    # -- the end -----------------------------------------------------------------------------
    def _train_to_the_end(self, stop: StopRequest) -> None:
        """The loop, then the last of everything; or, on a stop request, a checkpoint and RunInterrupted."""
        status, error = "failed", None
        try:
            self._loop(stop)
            if stop.signum is None:
                self.periodic(final=True)
                status = "finished"
                return
            self.save_checkpoint()
            status = "interrupted"
            self.reporter.event(self.job.counters.step, {"event": "interrupted", "signal": signal.Signals(stop.signum).name})
            raise RunInterrupted(stop.signum, self.job.run_dir, saved=True)
        except (KeyboardInterrupt, RunInterrupted):
            status = "interrupted"
            raise
        except TrainingStopped as exc:
            status, error = "diverged", exc
            raise
        except ContractError as exc:  # a plugin broke its contract mid-run: say when, and which checkpoint is kept
            error = exc.at_step(self.job.counters.step + 1, kept_checkpoint(self.job))
            raise error from None
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
            if self.job.world.is_main and not isinstance(sys.exc_info()[1], KeyboardInterrupt):  # not at a 2nd ^C
                if status != "finished":
                    self._last_grid()  # a stop or a failure shows where the run got to
                self.pictures.finish(self.reporter, self.job.counters.step, status)
            self.reporter.close(status, error)

    def _last_grid(self) -> None:
        """The grid at a stop or a failure, unless this step has one; never a second failure over the first."""
        if self.job.world.is_main and not self.pictures.has_grid(self.job.counters.step):
            try:
                self.save_samples()
            except Exception:  # noqa: BLE001 - the failure being reported matters more than its picture
                pass


def train(recipe, **kwargs: Any) -> Path:
    """Train ``recipe``; see :class:`Trainer` for the keyword arguments."""
    return Trainer(recipe, **kwargs).run()
