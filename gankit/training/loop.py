"""The training loop: data, GAN steps, logging, samples, checkpoints, evaluation.

    gankit run recipes/quickstart.yaml

Random streams: the global torch/numpy/Python generators are the training's
own (model initialisation, noise z). Data order, the fixed-noise grid and
evaluation each use a private generator, so sampling, checkpointing and
evaluating never change the training trajectory. Everything the loop needs
lives on the Trainer (no module-level state), so it can run under torchrun.

Health: each update is checked for non-finite values before the optimizer
applies it (``health.on_nonfinite``: stop, or skip the update), checkpoints
are never written from non-finite weights, and :class:`HealthMonitor` raises
alerts (D dominance, vanishing G gradients, mode collapse, FID regression).
"""

from __future__ import annotations

import math
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gankit.conditional import check_labels, check_pair, class_grid_labels, num_classes
from gankit.errors import DataError, GankitError
from gankit.loggers.factory import make_loggers
from gankit.recipe.load import resolved
from gankit.recipe.schema import Recipe
from gankit.training import checkpoint as ckpt_io
from gankit.training.build import (build_augment, build_batches, build_dataset, build_discriminator, build_generator,
                                build_loss, build_regularizers, build_training_data, resolve_device)
from gankit.training.distributed import World, join_world, unwrap, wrap
from gankit.training.failures import DISK_ERRORS, checked_optimizer, disk_error, is_out_of_memory, memory_error
from gankit.training.health import Alert, HealthMonitor, reference_images
from gankit.training.interrupts import RunInterrupted, StopRequest
from gankit.training.nonfinite import NonFinitePolicy, TrainingStopped, all_finite, bad_weights, describe, weights_finite
from gankit.training.progress import Progress
from gankit.training.rundir import create_run_dir, provenance, write_recipe
from gankit.training.sampler import ResumableSampler
from gankit.training.sampling import fixed_noise, generate, save_grid
from gankit.training import speed
from gankit.training.step import GANStep

_StopRequest = StopRequest  # the name benchmarks/train_step.py imports


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Builds a recipe's parts and trains them; :meth:`run` returns the run directory."""

    def __init__(self, recipe: Recipe, *, source: str | None = None, overrides: list[str] = (),
                 resume: dict[str, Any] | None = None, run_dir: Path | None = None):
        self.recipe = recipe
        self.source = source
        self.overrides = list(overrides)
        self.resume = resume  # a loaded checkpoint to continue from
        self.run_dir = run_dir
        self.step = self.epoch = self.batch_in_epoch = 0
        self.best_fid: float | None = None
        self.skipped_images = 0
        self.last_saved_step: int | None = None  # the step of checkpoints/last.pt
        self.world = World()  # this process among torchrun's (one process without it)

    # -- set-up -------------------------------------------------------------------
    def _setup(self) -> None:
        r = self.recipe
        self.world, rank_device = join_world(r.device)
        self.device = rank_device or resolve_device(r.device)
        speed.configure_determinism(r.train.deterministic, self.device)  # before any CUDA work or model
        speed.check_precision(r.train.precision, self.device)
        seed_everything(r.seed)  # the same on every rank: identical initial models
        # The files are checked (or the data cache built) before any model is built.
        self.dataset = self._training_data()
        self.G = build_generator(r).to(self.device)
        self.D = build_discriminator(r).to(self.device)
        check_pair(self.G, self.D)
        self.loss = build_loss(r)
        self.opt_g = checked_optimizer(r.optim.g, self.G, "optim.g")
        self.opt_d = checked_optimizer(r.optim.d, self.D, "optim.d")
        self.ema = None
        if r.train.ema is not None:
            from gankit.ema import EMA

            self.ema = EMA(self.G, r.train.ema.decay, r.train.ema.rampup)
        # After the EMA's copy, which samples and evaluates uncompiled; in place: the optimizers stay valid.
        speed.prepare_models(self.G, self.D, r.train.channels_last, r.train.compile)
        self.scaler_g = speed.make_scaler(r.train.precision, self.device)  # fp16 only, else None
        self.scaler_d = speed.make_scaler(r.train.precision, self.device)
        # Augmentation draws from its own generator (saved in checkpoints), not the training stream.
        self.aug_gen = torch.Generator(self.device).manual_seed(r.seed + 1) if r.augment else None
        self._rank_streams()
        # Under torchrun, G and D train through DDP wrappers; samples, evaluation and checkpoints use them bare.
        self.stepper = GANStep(wrap(self.G, self.device, self.world, r.train.sync_batchnorm),
                               wrap(self.D, self.device, self.world, r.train.sync_batchnorm),
                               self.loss, self.opt_g, self.opt_d,
                               regularizers=build_regularizers(r), augment=build_augment(r),
                               aug_generator=self.aug_gen, ema=self.ema, guard=self._guard,
                               autocast=lambda: speed.autocast(r.train.precision, self.device),
                               scaler_g=self.scaler_g, scaler_d=self.scaler_d, channels_last=r.train.channels_last)
        bs = r.data.batch_size
        self.sampler = ResumableSampler(len(self.dataset), r.seed, rank=self.world.rank, world=self.world.size)
        n = self.sampler.per_rank  # each rank's share of an epoch
        self.batches_per_epoch = n // bs if r.data.drop_last else math.ceil(n / bs)
        if self.batches_per_epoch == 0:
            raise DataError(f"data.batch_size {bs} is larger than the dataset ({n} images"
                            + (f" per rank of {self.world.size}" if self.world.distributed else "")
                            + ") with data.drop_last: true")
        limits = [r.train.steps] if r.train.steps else []
        if r.train.epochs:  # each step (G update) takes train.d_steps batches
            limits.append(max(1, r.train.epochs * self.batches_per_epoch // r.train.d_steps))
        self.total_steps = min(limits)
        self.loader_gen = torch.Generator().manual_seed(r.seed)  # DataLoader worker seeds, not the training stream
        self.loader = build_batches(r, self.dataset, self.sampler, self.device, self.loader_gen)
        self.fixed_z = fixed_noise(r.train.num_samples, self.G.nz, r.seed, self.device)
        self.fixed_labels = None
        if num_classes(self.G) is not None:  # a class grid: row k shows class k
            classes = num_classes(self.G)
            per_class = max(1, r.train.num_samples // classes)
            self.fixed_labels = class_grid_labels(classes, per_class, self.device)
            self.fixed_z = fixed_noise(classes * per_class, self.G.nz, r.seed, self.device)
        self.nonfinite = NonFinitePolicy(r.health, self.resume.get("skipped_steps", 0) if self.resume else 0)
        self.monitor = HealthMonitor(r.health, self.device, lambda: reference_images(self.dataset, r.train.num_samples))
        self.evaluator = None
        self.notices: list[str] = []
        if r.eval.metrics and self.world.is_main:  # rank 0 evaluates; the others wait in their next collective
            from gankit.eval.evaluator import Evaluator

            self.evaluator = Evaluator(r, self.device, lambda: build_dataset(r))
            self.notices += self.evaluator.prepare()  # missing Inception weights stop the run here
        if self.resume is not None:
            self._restore(self.resume)
        else:  # rank 0 names the run; every rank needs the name (checkpoint paths in messages)
            self.run_dir, self.run_id = self.world.broadcast(
                create_run_dir(r.out_dir, r.name) if self.world.is_main else None)
        self.info = provenance(self.overrides, self.source, self.run_id, self.device, self.world.size)
        if self.world.is_main:
            ckpt_io.remove_stale_temporaries(self.run_dir / "checkpoints")  # left by a killed run
            write_recipe(self.run_dir, resolved(r), self.info)

    def _training_data(self):
        """The dataset; under torchrun the first process of each machine builds a data cache, then the others read it."""
        def build():
            return build_training_data(self.recipe, log=lambda text: print(text, file=sys.stderr, flush=True))

        if not self.world.distributed:
            return build()
        first = self.world.local_rank == 0
        dataset = build() if first else None
        self.world.barrier()
        return dataset if first else build()

    def _rank_streams(self) -> None:
        """Each rank its own noise and augmentation streams (rank 0 keeps the one-process run's)."""
        rank = self.world.rank
        if rank == 0:
            return
        seed = self.recipe.seed + 7919 * rank  # any distinct seed per rank
        seed_everything(seed)
        if self.aug_gen is not None:
            self.aug_gen.manual_seed(seed + 1)

    def _restore(self, ck: dict[str, Any]) -> None:
        where = str(self.run_dir)
        ckpt_io.load_state(self.G, ck["generator"], "generator", where)
        ckpt_io.load_state(self.D, ck["discriminator"], "discriminator", where)
        ckpt_io.load_optimizer(self.opt_g, ck["optim_g"], "generator optimizer", where)
        ckpt_io.load_optimizer(self.opt_d, ck["optim_d"], "discriminator optimizer", where)
        for key, scaler in (("scaler_g", self.scaler_g), ("scaler_d", self.scaler_d)):
            if scaler is not None and ck.get(key):  # none in fp32/bf16 or older checkpoints: a fresh fp16 scale
                try:
                    scaler.load_state_dict(ck[key])
                except (KeyError, TypeError, RuntimeError) as exc:
                    raise ckpt_io.CheckpointError(f"checkpoint '{where}' has a malformed {key}: {exc}") from None
        self.step, self.epoch, self.batch_in_epoch = ck["step"], ck["epoch"], ck["batch_in_epoch"]
        self.best_fid = ck.get("best_fid")
        self.skipped_images = ck.get("skipped_images", 0)
        self.last_saved_step = ck["step"]
        self.run_id = ck["run_id"]
        saved_world = ck.get("world_size", 1)
        if saved_world != self.world.size:  # each rank's data shard and random streams depend on the world size
            raise GankitError(
                f"'{where}' was trained by {saved_world} process(es) and this run has {self.world.size}; resume it "
                + (f"with torchrun --nproc_per_node={saved_world} (or nodes × processes = {saved_world})"
                   if saved_world > 1 else "without torchrun") + ", or start a new run")
        rng = ck["rng_ranks"][self.world.rank] if saved_world > 1 else ck["rng"]
        ckpt_io.set_rng_state(rng, self.loader_gen)
        if self.ema is not None:
            self.ema.load_state_dict(ck["ema"])
        if self.aug_gen is not None:
            self.aug_gen.set_state(rng["augment"])

    def _state(self) -> dict[str, Any]:
        """The checkpoint's contents (every rank must call it: it gathers the ranks' random states)."""
        rng = self.world.gather({**ckpt_io.rng_state(self.loader_gen),
                                 **({"augment": self.aug_gen.get_state()} if self.aug_gen is not None else {})})
        return {
            "format": ckpt_io.FORMAT_VERSION,
            "gankit_version": self.info["version"],
            "run_id": self.run_id,
            "recipe": resolved(self.recipe),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "generator": self.G.state_dict(),
            "discriminator": self.D.state_dict(),
            "optim_g": self.opt_g.state_dict(),
            "optim_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict() if self.scaler_g is not None else None,  # train.precision: fp16
            "scaler_d": self.scaler_d.state_dict() if self.scaler_d is not None else None,
            "rng": rng[0],  # rank 0's (the only one without torchrun)
            **({"world_size": self.world.size, "rng_ranks": rng} if self.world.distributed else {}),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "best_fid": self.best_fid,
            "skipped_images": self.skipped_images,
            "skipped_steps": self.nonfinite.skipped,
        }

    # -- periodic work ------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        path = self.run_dir / "checkpoints" / "last.pt"
        # Never replace the last good checkpoint with a broken state (every rank stops alike).
        if not self.world.all(weights_finite(self.G, self.D)):
            bad = bad_weights(generator=self.G, discriminator=self.D)
            self._stop(f"step {self.step}, before saving a checkpoint: {', '.join(bad[:5])}"
                       + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""),
                       "lower the learning rates (optim.g.lr, optim.d.lr)", {"weights": bad[:50]})
        state = self._state()
        if self.world.is_main:
            ckpt_io.atomic_save(state, path, keep_previous=True)
        self.last_saved_step = self.step
        return path

    @property
    def sampling_generator(self) -> torch.nn.Module:
        """The generator that samples and evaluation use: the EMA when on."""
        return self.ema.module if self.ema is not None else self.G

    def save_samples(self) -> None:
        images = generate(self.sampling_generator, self.fixed_z, labels=self.fixed_labels)
        path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        nrow = len(self.fixed_labels) // num_classes(self.G) if self.fixed_labels is not None else None
        try:
            save_grid(images, path, nrow=nrow)
        except OSError as exc:
            raise GankitError(f"cannot write samples '{path}': {exc.strerror or exc}") from None
        self.logger.log_images(self.step, {"samples": path})
        self._alerts(self.monitor.at_samples(self.step, images))

    def evaluate(self) -> bool:
        """Run the evaluator; True when FID improved (best.pt is then due)."""
        G, classes = self.sampling_generator, num_classes(self.G)
        # A conditional G is evaluated over every class in turn (its default without labels).
        rows = self.evaluator.evaluate(lambda z: generate(G, z), G.nz, self.step,
                                       generator="ema" if self.ema is not None else "raw")
        if classes is not None:
            for row in rows:
                row["classes"] = classes
        self.logger.log_metrics(self.step, rows)
        fid = next((row["value"] for row in rows if row.get("metric") == "fid"), None)
        if fid is not None:
            self._alerts(self.monitor.at_fid(self.step, fid, self.best_fid))
        if fid is not None and (self.best_fid is None or fid < self.best_fid):
            self.best_fid = fid
            return True
        return False

    def _periodic(self, final: bool) -> None:
        t, s = self.recipe.train, self.step
        main = self.world.is_main
        if main and (final or (t.sample_every and s % t.sample_every == 0)):
            self.save_samples()
        improved = False
        if self.evaluator is not None and (final or self.evaluator.due(s)):
            improved = self.evaluate()
        if self.recipe.eval.metrics and self.world.distributed:  # a best.pt is due on every rank or none
            improved = self.world.broadcast(improved)
        if final or improved or (t.checkpoint_every and s % t.checkpoint_every == 0):
            path = self.save_checkpoint()
            if improved and main:
                ckpt_io.copy_checkpoint(path, path.with_name("best.pt"))

    def _log(self, stats: dict[str, torch.Tensor], images: int, seconds: float) -> None:
        # Under torchrun: the mean over the ranks' batches, and the images/s of all ranks together.
        scalars = {k: float(v) for k, v in self.world.mean(stats).items()}
        scalars.update(
            epoch=self.epoch,
            lr_g=self.opt_g.param_groups[0]["lr"],
            lr_d=self.opt_d.param_groups[0]["lr"],
            img_per_s=images * self.world.size / max(seconds, 1e-9),
        )
        self.logger.log_scalars(self.step, scalars)
        self.progress.show(self.step, self.epoch, scalars)
        self._alerts(self.monitor.at_log(self.step, scalars))

    # -- health -----------------------------------------------------------------
    def _alerts(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self.logger.log_event(self.step, {"event": "alert", "alert": alert.name, "message": alert.message,
                                              "evidence": alert.evidence})
            self.progress.message(f"alert at step {self.step}: {alert.message}")

    def _guard(self, player: str, values: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
        """Called by gan_step before each optimizer step: apply this update?"""
        # Under torchrun all ranks skip (or stop) together, or their weights would part.
        if self.world.all(all_finite(values)):
            return True
        finding = describe(self.step + 1, player, values, unwrap(module))
        if self.nonfinite.skip(finding):
            total = self.nonfinite.skipped
            self.logger.log_event(finding.step, {"event": "skipped_step", **finding.evidence(), "total": total})
            self.progress.message(f"warning: {finding.summary()}; update skipped ({total} skipped so far)")
            return False
        lr = (self.opt_d if player == "discriminator" else self.opt_g).param_groups[0]["lr"]
        self._stop(*self.nonfinite.stop_reason(finding, lr), finding.evidence())

    def _stop(self, what: str, hint: str, evidence: dict) -> None:
        """Stop the run on a non-finite state, saying which checkpoint is kept."""
        self.logger.log_event(self.step, {"event": "nonfinite", "message": what, **evidence, "action": "stop"})
        kept = (f"the last good checkpoint (step {self.last_saved_step}) is kept: {self.run_dir / 'checkpoints' / 'last.pt'}"
                if self.last_saved_step is not None else "no checkpoint was written yet")
        raise TrainingStopped(f"training stopped, non-finite values at {what}\n    {kept}"
                              + (f"\n    {hint}" if hint else ""), self.run_dir)

    def _bad_images(self, bad) -> None:
        if self.recipe.data.on_bad_image == "error":
            raise DataError(
                f"cannot read image '{bad[0].path}': {bad[0].reason}\n"
                "    fix or remove the file, or set data.on_bad_image: skip to skip and count unreadable images"
            )
        self.skipped_images += len(bad)
        self.logger.log_event(self.step, {"event": "skipped_images", "count": len(bad),
                                          "files": [b.path for b in bad[:10]], "total": self.skipped_images})

    # -- the loop -----------------------------------------------------------------
    def _stopping(self, stop: StopRequest) -> bool:
        """Whether a stop was asked for; under torchrun, on any rank (all stop at the same step)."""
        if self.world.distributed:
            stop.signum = self.world.max(stop.signum or 0) or None
        return stop.signum is not None

    def _train(self, stop: StopRequest) -> None:
        r = self.recipe
        conditional = num_classes(self.G) is not None or num_classes(self.D) is not None
        window_images, window_t0 = 0, time.perf_counter()
        group: list = []  # the real batches of the next step: one per D update (train.d_steps)
        group_start = (self.epoch, self.batch_in_epoch)  # where a step's batches begin
        # A signal stops the run between steps, never inside one: a step's batches are all or nothing.
        while self.step < self.total_steps and (group or not self._stopping(stop)):
            if self.batch_in_epoch >= self.batches_per_epoch:
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            self.sampler.set_position(self.epoch, self.batch_in_epoch * r.data.batch_size)
            batches = iter(self.loader)
            while self.step < self.total_steps and (group or not self._stopping(stop)):
                try:
                    images, labels, bad = next(batches)
                except StopIteration:
                    self.batch_in_epoch = self.batches_per_epoch  # the epoch is over
                    break
                except Exception:
                    if stop.signum is not None:  # a worker was hit by the same Ctrl-C
                        self.epoch, self.batch_in_epoch = group_start
                        return
                    raise
                self.batch_in_epoch += 1
                if bad:
                    self._bad_images(bad)
                if images is None:  # every image of the batch was unreadable and skipped
                    if self.world.distributed:  # this rank would fall a batch behind the others: say so, not hang
                        raise DataError(f"a whole batch of unreadable images at epoch {self.epoch}, batch "
                                        f"{self.batch_in_epoch} on rank {self.world.rank}; under torchrun "
                                        "remove the unreadable files, or train without torchrun")
                    continue
                if conditional:
                    check_labels(labels, num_classes(self.G) or num_classes(self.D), r.data.name)
                    labels = labels.to(self.device, non_blocking=True)
                group.append((images.to(self.device, non_blocking=True), labels if conditional else None))
                if len(group) < r.train.d_steps:
                    continue
                log_now = (self.step + 1) % r.train.log_every == 0 or self.step + 1 == self.total_steps
                stats = self.stepper(group, self.step, grad_norms=log_now)
                self.step += 1
                window_images += sum(real.shape[0] for real, _ in group)
                group, group_start = [], (self.epoch, self.batch_in_epoch)
                self.progress.update(self.step)
                if stats is not None:  # None: an update was skipped (non-finite values)
                    self.nonfinite.step_done()
                    self.monitor.observe(stats)
                if log_now and stats is not None:
                    self._log(stats, window_images, time.perf_counter() - window_t0)
                    window_images, window_t0 = 0, time.perf_counter()
                if self.step < self.total_steps:
                    t0 = time.perf_counter()
                    self._periodic(final=False)
                    window_t0 += time.perf_counter() - t0  # img/s measures training alone

    def run(self) -> Path:
        try:
            return self._setup_and_train()
        finally:
            self.world.leave()  # torchrun's process group, once this rank is done

    def _setup_and_train(self) -> Path:
        try:
            self._setup()
        except (MemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc):
                raise
            raise memory_error(exc, "setting up the run") from None
        r = self.recipe
        self.logger = make_loggers(r, self.run_dir, job_type="train", resumed=self.resume is not None)
        self.logger.log_config({**resolved(r), "gankit": self.info})
        self.progress = Progress(r.log.progress if self.world.is_main else "none", self.total_steps, self.step)
        for notice in self.notices:
            self.progress.message(notice)
            self.logger.log_event(self.step, {"event": "notice", "message": notice})
        if self.resume is not None:
            self.logger.log_event(self.step, {"event": "resumed", "overrides": self.overrides})
        with StopRequest() as stop:  # until the very end: a second signal anywhere is handled here
            try:
                self._run(stop)
            except KeyboardInterrupt:  # a second signal: stop at once (every write is atomic)
                # A write it cut short leaves only its temporary file behind: remove it.
                ckpt_io.remove_stale_temporaries(self.run_dir / "checkpoints")
                raise RunInterrupted(stop.signum or signal.SIGINT, self.run_dir, saved=False) from None
        if self.skipped_images:
            self.progress.message(f"skipped {self.skipped_images} unreadable images (see metrics.jsonl)")
        if self.nonfinite.skipped:
            self.progress.message(f"skipped {self.nonfinite.skipped} non-finite updates (see metrics.jsonl)")
        return self.run_dir

    def _run(self, stop: StopRequest) -> None:
        status = "failed"
        try:
            self._train(stop)
            if stop.signum is None:
                self._periodic(final=True)
                status = "finished"
                return
            self.save_checkpoint()
            status = "interrupted"
            self.logger.log_event(self.step, {"event": "interrupted", "signal": signal.Signals(stop.signum).name})
            raise RunInterrupted(stop.signum, self.run_dir, saved=True)
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except TrainingStopped:
            status = "diverged"
            raise
        except OSError as exc:  # a full or unwritable disk while logging: say where, not a traceback
            if exc.errno not in DISK_ERRORS:
                raise
            raise disk_error(exc, self.run_dir) from None
        except (MemoryError, RuntimeError) as exc:
            if (error := speed.user_error(exc, self.recipe.train)) is not None:  # train.compile, train.deterministic
                raise error from None
            if not is_out_of_memory(exc):
                raise
            raise memory_error(exc, f"training step {self.step + 1}") from None
        finally:
            self.progress.close()
            try:
                self.logger.finish(status)
            except OSError as exc:
                self.progress.message(f"could not record the end of the run in metrics.jsonl: {exc.strerror or exc}")


def train(recipe: Recipe, **kwargs: Any) -> Path:
    """Train ``recipe``; see :class:`Trainer` for the keyword arguments."""
    return Trainer(recipe, **kwargs).run()
