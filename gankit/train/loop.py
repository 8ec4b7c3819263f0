"""The training loop: data, GAN steps, logging, samples, checkpoints, evaluation.

    gankit run recipes/quickstart.yaml

Random streams: the global torch/numpy/Python generators are the training's
own (model initialisation, noise z). Data order, the fixed-noise grid and
evaluation each use a private generator, so sampling, checkpointing and
evaluating never change the training trajectory. Everything the loop needs
lives on the Trainer (no module-level state), so it can run under torchrun.
"""

from __future__ import annotations

import math
import random
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from gankit.data.common import collate
from gankit.errors import DataError, GankitError
from gankit.loggers.factory import make_loggers
from gankit.recipe.load import resolved
from gankit.recipe.optimizers import build_optimizer
from gankit.recipe.schema import Recipe
from gankit.train import checkpoint as ckpt_io
from gankit.train.build import build_dataset, build_discriminator, build_generator, build_loss, resolve_device
from gankit.train.progress import Progress
from gankit.train.rundir import create_run_dir, provenance, write_recipe
from gankit.train.sampler import ResumableSampler
from gankit.train.sampling import fixed_noise, generate, save_grid
from gankit.train.step import gan_step


class RunInterrupted(Exception):
    """The run was stopped by SIGINT/SIGTERM; a checkpoint was saved (unless stopped twice)."""

    def __init__(self, signum: int, run_dir: Path, saved: bool):
        self.exit_code = 128 + signum  # 130 for Ctrl-C, 143 for SIGTERM
        self.run_dir = run_dir
        how = "checkpoint saved" if saved else "stopped at once, last checkpoint kept"
        super().__init__(f"interrupted ({signal.Signals(signum).name}): {how}; resume with: gankit run --resume {run_dir}")


class _StopRequest:
    """Turns the first SIGINT/SIGTERM into a request to stop after the current step."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt  # a second signal: stop at once
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


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

    # -- set-up -------------------------------------------------------------------
    def _setup(self) -> None:
        r = self.recipe
        self.device = resolve_device(r.device)
        seed_everything(r.seed)
        self.dataset = build_dataset(r)  # checks the files before any model is built
        self.G = build_generator(r).to(self.device)
        self.D = build_discriminator(r).to(self.device)
        self.loss = build_loss(r)
        self.opt_g = build_optimizer(r.optim.g, self.G.parameters())
        self.opt_d = build_optimizer(r.optim.d, self.D.parameters())
        bs = r.data.batch_size
        n = len(self.dataset)
        self.batches_per_epoch = n // bs if r.data.drop_last else math.ceil(n / bs)
        if self.batches_per_epoch == 0:
            raise DataError(f"data.batch_size {bs} is larger than the dataset ({n} images) with data.drop_last: true")
        limits = [r.train.steps] if r.train.steps else []
        if r.train.epochs:
            limits.append(r.train.epochs * self.batches_per_epoch)
        self.total_steps = min(limits)
        self.sampler = ResumableSampler(n, r.seed)
        self.loader_gen = torch.Generator().manual_seed(r.seed)
        self.loader = DataLoader(
            self.dataset, batch_size=bs, sampler=self.sampler, num_workers=r.data.workers,
            collate_fn=collate, drop_last=r.data.drop_last, pin_memory=self.device.type == "cuda",
            generator=self.loader_gen,  # worker seeds come from here, not from the training stream
        )
        self.fixed_z = fixed_noise(r.train.num_samples, self.G.nz, r.seed, self.device)
        self.evaluator = None
        self.notices: list[str] = []
        if r.eval.metrics:
            from gankit.eval.evaluator import Evaluator

            self.evaluator = Evaluator(r, self.device, lambda: build_dataset(r))
            self.notices += self.evaluator.prepare()  # missing Inception weights stop the run here
        if self.resume is not None:
            self._restore(self.resume)
        else:
            self.run_dir, self.run_id = create_run_dir(r.out_dir, r.name)
        self.info = provenance(self.overrides, self.source, self.run_id, self.device)
        write_recipe(self.run_dir, resolved(r), self.info)

    def _restore(self, ck: dict[str, Any]) -> None:
        where = str(self.run_dir)
        ckpt_io.load_state(self.G, ck["generator"], "generator", where)
        ckpt_io.load_state(self.D, ck["discriminator"], "discriminator", where)
        self.opt_g.load_state_dict(ck["optim_g"])
        self.opt_d.load_state_dict(ck["optim_d"])
        self.step, self.epoch, self.batch_in_epoch = ck["step"], ck["epoch"], ck["batch_in_epoch"]
        self.best_fid = ck.get("best_fid")
        self.skipped_images = ck.get("skipped_images", 0)
        self.run_id = ck["run_id"]
        ckpt_io.set_rng_state(ck["rng"], self.loader_gen)

    def _state(self) -> dict[str, Any]:
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
            "rng": ckpt_io.rng_state(self.loader_gen),
            "best_fid": self.best_fid,
            "skipped_images": self.skipped_images,
        }

    # -- periodic work ------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        path = self.run_dir / "checkpoints" / "last.pt"
        ckpt_io.atomic_save(self._state(), path)
        return path

    def save_samples(self) -> None:
        path = save_grid(generate(self.G, self.fixed_z), self.run_dir / "samples" / f"step_{self.step:07d}.png")
        self.logger.log_images(self.step, {"samples": path})

    def evaluate(self) -> bool:
        """Run the evaluator; True when FID improved (best.pt is then due)."""
        rows = self.evaluator.evaluate(lambda z: generate(self.G, z), self.G.nz, self.step)
        self.logger.log_metrics(self.step, rows)
        fid = next((row["value"] for row in rows if row.get("metric") == "fid"), None)
        if fid is not None and (self.best_fid is None or fid < self.best_fid):
            self.best_fid = fid
            return True
        return False

    def _periodic(self, final: bool) -> None:
        t, s = self.recipe.train, self.step
        if final or (t.sample_every and s % t.sample_every == 0):
            self.save_samples()
        improved = False
        if self.evaluator is not None and (final or self.evaluator.due(s)):
            improved = self.evaluate()
        if final or improved or (t.checkpoint_every and s % t.checkpoint_every == 0):
            path = self.save_checkpoint()
            if improved:
                best = path.with_name("best.pt")
                tmp = path.with_name(".best.pt.tmp")
                shutil.copyfile(path, tmp)
                tmp.replace(best)

    def _log(self, stats: dict[str, torch.Tensor], images: int, seconds: float) -> None:
        scalars = {k: float(v) for k, v in stats.items()}
        scalars.update(
            epoch=self.epoch,
            lr_g=self.opt_g.param_groups[0]["lr"],
            lr_d=self.opt_d.param_groups[0]["lr"],
            img_per_s=images / max(seconds, 1e-9),
        )
        self.logger.log_scalars(self.step, scalars)
        self.progress.show(self.step, self.epoch, scalars)

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
    def _train(self, stop: _StopRequest) -> None:
        r = self.recipe
        window_images, window_t0 = 0, time.perf_counter()
        while self.step < self.total_steps and stop.signum is None:
            if self.batch_in_epoch >= self.batches_per_epoch:
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            self.sampler.set_position(self.epoch, self.batch_in_epoch * r.data.batch_size)
            batches = iter(self.loader)
            while self.step < self.total_steps and stop.signum is None:
                try:
                    images, _labels, bad = next(batches)
                except StopIteration:
                    self.batch_in_epoch = self.batches_per_epoch  # the epoch is over
                    break
                except Exception:
                    if stop.signum is not None:  # a worker was hit by the same Ctrl-C
                        break
                    raise
                self.batch_in_epoch += 1
                if bad:
                    self._bad_images(bad)
                if images is None:
                    continue
                real = images.to(self.device, non_blocking=True)
                log_now = (self.step + 1) % r.train.log_every == 0 or self.step + 1 == self.total_steps
                stats = gan_step(self.G, self.D, self.loss, self.opt_g, self.opt_d, real, self.G.nz, grad_norms=log_now)
                self.step += 1
                window_images += real.shape[0]
                self.progress.update(self.step)
                if log_now:
                    self._log(stats, window_images, time.perf_counter() - window_t0)
                    window_images, window_t0 = 0, time.perf_counter()
                if self.step < self.total_steps:
                    t0 = time.perf_counter()
                    self._periodic(final=False)
                    window_t0 += time.perf_counter() - t0  # img/s measures training alone

    def run(self) -> Path:
        self._setup()
        r = self.recipe
        self.logger = make_loggers(r, self.run_dir, job_type="train", resumed=self.resume is not None)
        self.logger.log_config({**resolved(r), "gankit": self.info})
        self.progress = Progress(r.log.progress, self.total_steps, self.step)
        for notice in self.notices:
            self.progress.message(notice)
            self.logger.log_event(self.step, {"event": "notice", "message": notice})
        if self.resume is not None:
            self.logger.log_event(self.step, {"event": "resumed", "overrides": self.overrides})
        status = "failed"
        try:
            with _StopRequest() as stop:
                try:
                    self._train(stop)
                    if stop.signum is None:
                        self._periodic(final=True)
                    else:
                        self.save_checkpoint()
                except KeyboardInterrupt:
                    status = "interrupted"
                    raise RunInterrupted(stop.signum or signal.SIGINT, self.run_dir, saved=False) from None
            if stop.signum is not None:
                status = "interrupted"
                self.logger.log_event(self.step, {"event": "interrupted", "signal": signal.Signals(stop.signum).name})
                raise RunInterrupted(stop.signum, self.run_dir, saved=True)
            status = "finished"
        finally:
            self.progress.close()
            self.logger.finish(status)
        if self.skipped_images:
            self.progress.message(f"skipped {self.skipped_images} unreadable images (see metrics.jsonl)")
        return self.run_dir


def train(recipe: Recipe, **kwargs: Any) -> Path:
    """Train ``recipe``; see :class:`Trainer` for the keyword arguments."""
    return Trainer(recipe, **kwargs).run()
