"""Putting a run together from its recipe: process group, data, players, the GAN step, state, run directory.

    job = assemble(recipe, source="recipes/x.yaml", overrides=[...])          # a new run
    job = assemble(recipe, resume=checkpoint, run_dir=RUN)                     # or continue one

The order is the one every run has always used, so that the same recipe and
seed give the same initial weights: seed, data (files checked, or the data
cache built, before any model), regularisers, G, D, optimizers, EMA, the
private streams, loss, augmentation, the evaluator (which may draw its
extractor's initialisation), then the checkpoint's states on resume. It is a
file of its own because it is read once, top to bottom, and never again
while the loop runs; what it builds is a :class:`Job`, called ``job``
everywhere (``run`` is the verb: :meth:`Trainer.run`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gankit.core.plugins import get_host
from gankit.nn.conditional import class_grid_labels, num_classes
from gankit.recipe.build import (build_augment, build_dataset, build_loss, build_regularizers, resolve_device)
from gankit.recipe.schema import Recipe
from gankit.sampling import RunSampling, fixed_noise
from gankit.rundir.checkpoint import find_checkpoint, load_checkpoint, load_state, remove_stale_temporaries
from gankit.rundir.layout import (RunLock, copy_plugins, create_run_dir, previous_provenance, provenance,
                                  remove_stale_files, write_recipe)
from gankit.rundir.metrics import repair_record
from gankit.recipe.load import resolved
from gankit.training import speed
from gankit.training.distributed import World, join_world, resume_command, wrap
from gankit.training.feeding import Feeder
from gankit.training.health import HealthMonitor, reference_images
from gankit.training.nonfinite import NonFinitePolicy
from gankit.training.players import Players, Scheduled
from gankit.training.state import RunState, Streams, seed_everything
from gankit.training.step import GANStep


@dataclass
class Job:
    """Everything one training run works with."""

    recipe: Recipe
    world: World
    device: torch.device
    players: Players  # G, D, their optimizers, scalers and EMA
    gan_step: GANStep  # one iteration: D update(s), then G's (under torchrun, through DDP wrappers)
    feeder: Feeder  # real batches in the resumable order
    state: RunState  # everything a checkpoint holds
    scheduled: Scheduled  # the recipe's schedules, set before each step
    monitor: HealthMonitor  # the alerts
    total_steps: int  # the run's length in G updates
    grid: tuple[torch.Tensor, torch.Tensor | None]  # the fixed-noise grid's latents and labels (None: unconditional)
    sampling: RunSampling  # the recipe's sampling.batchnorm for grids, evaluations and checkpoints
    evaluator: Any = None  # gankit.eval.evaluator.Evaluator when eval.metrics lists any
    run_dir: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)  # provenance: the recipe.yaml's gankit: key
    notices: list[str] = field(default_factory=list)  # said once the run starts
    lock: RunLock | None = None
    last_saved_step: int | None = None  # the step of checkpoints/last.pt

    @property
    def counters(self):
        return self.state.counters

    @property
    def nonfinite(self) -> NonFinitePolicy:
        return self.state.nonfinite


def run_length(train, batches_per_epoch: int) -> int:
    """The run's length in G updates: ``train.steps``, ``train.epochs``, whichever comes first."""
    limits = [train.steps] if train.steps else []
    if train.epochs:  # each step (G update) takes train.d_steps batches
        limits.append(max(1, train.epochs * batches_per_epoch // train.d_steps))
    return min(limits)


def fixed_grid(G, n: int, seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The samples grid's latents (its own seeded stream) and, for a conditional G, labels: row k is class k."""
    classes = num_classes(G)
    if classes is None:
        return fixed_noise(n, G.nz, seed, device), None
    labels = class_grid_labels(classes, max(1, n // classes), device)
    return fixed_noise(len(labels), G.nz, seed, device), labels


def build_training_data(recipe: Recipe, log=None) -> torch.utils.data.Dataset:
    """The dataset to train on: the recipe's, or its uint8 cache when ``data.cache`` is on.

    A cache is built on first use (decoding with ``data.workers`` processes,
    following ``data.on_bad_image``) and reused afterwards; ``log`` receives
    one-line notices (default: stderr).
    """
    dataset = build_dataset(recipe)
    if not recipe.data.cache:
        return dataset
    from gankit.data.cache import cache_dataset
    from gankit.data.identity import dataset_identity
    from gankit.eval.cache import cache_root

    d = recipe.data
    return cache_dataset(dataset, dataset_identity(recipe.data), cache_root(d.cache_dir), on_bad_image=d.on_bad_image,
                         workers=d.workers, log=log)


def build_batches(recipe: Recipe, dataset: torch.utils.data.Dataset, sampler, device: torch.device,
                  generator: torch.Generator | None = None):
    """Iterable of ``(images, labels, bad)`` batches in ``sampler``'s order (a ResumableSampler).

    For a cached dataset a :class:`gankit.data.cached_loader.CachedBatches`
    (images already on ``device``); otherwise a DataLoader with
    ``data.workers`` processes seeded from ``generator``.
    """
    from gankit.data.cache import CachedDataset

    d = recipe.data
    if isinstance(dataset, CachedDataset):
        from gankit.data.cached_loader import CachedBatches

        return CachedBatches(dataset, d.batch_size, sampler, device, drop_last=d.drop_last)
    from torch.utils.data import DataLoader

    from gankit.data.common import collate
    from gankit.data.workers import loader_options

    return DataLoader(
        dataset, batch_size=d.batch_size, sampler=sampler, collate_fn=collate, drop_last=d.drop_last,
        pin_memory=device.type == "cuda", generator=generator, **loader_options(d.workers),
    )


def _training_data(recipe, world: World):
    """The dataset; under torchrun the first process of each machine builds a data cache, then the others read it."""
    def build():
        return build_training_data(recipe, log=lambda text: print(text, file=sys.stderr, flush=True))

    if not world.distributed:
        return build()
    first = world.local_rank == 0
    dataset = build() if first else None
    world.barrier()
    return dataset if first else build()


def assemble(recipe, *, source: str | None = None, overrides: list[str] = (), resume: dict[str, Any] | None = None,
             run_dir: Path | None = None) -> Job:
    """Build a run's parts (the GAN step's non-finite guard is set by the trainer, which owns the reporter)."""
    r = recipe
    world, rank_device = join_world(r.device)
    device = rank_device or resolve_device(r.device)
    speed.configure_determinism(r.train.deterministic, device)  # before any CUDA work or model
    speed.check_precision(r.train.precision, device)
    seed_everything(r.seed)  # the same on every rank: identical initial models
    dataset = _training_data(r, world)
    regularizers = build_regularizers(r)
    players = Players.build(r, device, regularizers)
    streams = Streams(r.seed, device, r.augment is not None)
    streams.per_rank(r.seed, world.rank)
    # Under torchrun, G and D train through DDP wrappers; samples, evaluation and checkpoints use them bare.
    gan_step = GANStep(wrap(players.G, device, world, r.train.sync_batchnorm),
                       wrap(players.D, device, world, r.train.sync_batchnorm), build_loss(r), players.opt_g,
                       players.opt_d, regularizers=regularizers, augment=build_augment(r),
                       aug_generator=streams.augment, ema=players.ema,
                       autocast=lambda: speed.autocast(r.train.precision, device), scaler_g=players.scaler_g,
                       scaler_d=players.scaler_d, channels_last=r.train.channels_last, images_per_step=world.size,
                       across_ranks=world.mean if world.distributed else None)
    feeder = Feeder(r, dataset, world, device, lambda sampler: build_batches(r, dataset, sampler, device, streams.loader),
                    num_classes(players.G) or num_classes(players.D))
    sampling = RunSampling(r.sampling, r.seed)
    state = RunState(players, gan_step, feeder, streams, world, NonFinitePolicy(r.health), recipe=r,
                     sampling=sampling)
    job = Job(r, world, device, players, gan_step, feeder, state, Scheduled(r, players, gan_step, get_host().registry),
              HealthMonitor(r.health, device, lambda: reference_images(dataset, r.train.num_samples)),
              run_length(r.train, feeder.batches_per_epoch), fixed_grid(players.G, r.train.num_samples, r.seed, device),
              sampling)
    if r.eval.metrics:  # every rank: evaluation is shared among them
        from gankit.eval.evaluator import Evaluator

        job.evaluator = Evaluator(r, device, lambda: build_dataset(r), registry=get_host().registry,
                                  log=lambda text: print(text, file=sys.stderr, flush=True) if world.is_main else None)
        # missing weights: refused, or skipped and said so; per-class metrics need a conditional G
        job.notices += job.evaluator.prepare(conditional=num_classes(players.G) is not None)
    if resume is not None:
        state.load_state_dict(resume, str(run_dir))
        job.run_dir, job.last_saved_step = run_dir, resume["step"]
    else:  # rank 0 names the run; every rank needs the name (checkpoint paths in messages)
        initialised = initialise_from(players, r.init_from, r.init_from_parts) if r.init_from else None
        job.run_dir, state.run_id = world.broadcast(create_run_dir(r.out_dir, r.name) if world.is_main else None)
        if world.is_main:  # the run keeps its own copy of every .py plugin
            r.plugins, state.counters.plugin_files = copy_plugins(job.run_dir, r.plugins, r._source_dir)
    job.info = provenance(list(overrides), source, state.run_id, device, world.size)
    job.info["plugin_files"] = state.counters.plugin_files
    if resume is None and r.init_from:
        job.info["init_from"] = initialised
    if resume is not None:  # the run's first overrides stay its overrides; each resume's are added
        first = previous_provenance(job.run_dir)
        job.info.update(overrides=first.get("overrides", []), recipe_file=first.get("recipe_file"),
                        resumes=[*first.get("resumes", []), list(overrides)])
    if world.is_main:
        job.lock = RunLock(job.run_dir).acquire()  # a second process on the same run is refused
        remove_stale_temporaries(job.run_dir / "checkpoints")  # left by a killed run
        remove_stale_files(job.run_dir)
        if resume is not None and repair_record(job.run_dir):
            job.notices.append(f"repaired {job.run_dir / 'metrics.jsonl'}: cut a row torn by the killed run")
        write_recipe(job.run_dir, resolved(r), job.info, resume_command(job.run_dir))
    return job


def initialise_from(players: Players, source: str, parts: list[str]) -> dict[str, Any]:
    """Load ``parts`` of a run's (or checkpoint's) weights into the new run's players; what was loaded."""
    import hashlib

    path = find_checkpoint(source)
    ck = load_checkpoint(path)
    for part in parts:
        load_state(players.G if part == "generator" else players.D, ck[part], f"{part} (init_from)", str(path))
    if players.ema is not None and "generator" in parts:  # the average starts from the weights it averages
        players.ema.module.load_state_dict(players.G.state_dict())
    return {"checkpoint": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "run_id": ck.get("run_id"), "step": ck.get("step"), "parts": list(parts)}
