"""Putting a run together from its recipe: process group, data, players, streams, evaluator, run directory.

    run = assemble(recipe, source="recipes/x.yaml", overrides=[...])          # a new run
    run = assemble(recipe, resume=checkpoint, run_dir=RUN)                     # or continue one

The order is the one every run has always used, so that the same recipe and
seed give the same initial weights: seed, data (files checked, or the data
cache built, before any model), G, D, optimizers, EMA, the private streams,
the evaluator (which may draw its extractor's initialisation), then the
checkpoint's states on resume.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gankit.core.plugins import get_host
from gankit.data.labels import dataset_labels
from gankit.nn.conditional import class_grid_labels, num_classes
from gankit.recipe.load import resolved
from gankit.sampling import fixed_noise
from gankit.training import checkpoint as ckpt_io
from gankit.training import speed
from gankit.training.distributed import World, join_world
from gankit.training.feeding import Feeder, Latents
from gankit.training.health import HealthMonitor, reference_images
from gankit.training.hyper import Scheduled
from gankit.training.nonfinite import NonFinitePolicy
from gankit.training.parts import build_batches, build_dataset, build_regularizers, build_training_data, resolve_device
from gankit.training.players import Players
from gankit.training.rundir import (RunLock, copy_plugins, create_run_dir, previous_provenance, provenance,
                                    remove_stale_files, repair_record, write_recipe)
from gankit.training.state import Counters, Streams, rank_rng, restore_components, seed_everything
from gankit.training.step import GANStep


@dataclass
class Run:
    """Everything one training run works with; each part does one job."""

    recipe: Any
    world: World
    device: torch.device
    dataset: Any
    players: Players
    streams: Streams
    stepper: GANStep
    feeder: Feeder
    counters: Counters
    nonfinite: NonFinitePolicy
    monitor: HealthMonitor
    fixed_z: torch.Tensor
    fixed_labels: torch.Tensor | None
    evaluator: Any = None
    run_dir: Path | None = None
    run_id: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    lock: RunLock | None = None
    scheduled: Scheduled | None = None  # the recipe's schedules, set before each step
    last_saved_step: int | None = None  # the step of checkpoints/last.pt

    @property
    def total_steps(self) -> int:
        return self.feeder.total_steps()


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
             run_dir: Path | None = None) -> Run:
    """Build a run's parts (the GAN step's non-finite guard is set by the trainer, which owns the reporter)."""
    r = recipe
    world, rank_device = join_world(r.device)
    device = rank_device or resolve_device(r.device)
    speed.configure_determinism(r.train.deterministic, device)  # before any CUDA work or model
    speed.configure_tf32(r.train.tf32)
    speed.check_precision(r.train.precision, device)
    seed_everything(r.seed)  # the same on every rank: identical initial models
    dataset = _training_data(r, world)
    regularizers = build_regularizers(r)
    players = Players.build(r, device, regularizers)
    streams = Streams(r.seed, device, r.augment is not None)
    streams.per_rank(r.seed, world.rank)
    # Under torchrun, G and D train through DDP wrappers; samples, evaluation and checkpoints use them bare.
    latents = Latents(players.G.nz, num_classes(players.G), dataset_labels(dataset), streams.latents, device,
                      world.rank, world.size)
    stepper = GANStep.from_recipe(r, players, regularizers, device, world, latents, streams.augment)
    classes = num_classes(players.G) or num_classes(players.D)
    feeder = Feeder(r, dataset, world, device,
                    lambda sampler, batch: build_batches(r, dataset, sampler, device, streams.loader, batch), classes,
                    batches_per_step=r.train.d_steps + stepper.g_takes_batch)
    fixed_z, fixed_labels = fixed_noise(r.train.num_samples, players.G.nz, r.seed, device), None
    if num_classes(players.G) is not None:  # a class grid: row k shows class k
        per_class = max(1, r.train.num_samples // num_classes(players.G))
        fixed_labels = class_grid_labels(num_classes(players.G), per_class, device)
        fixed_z = fixed_noise(len(fixed_labels), players.G.nz, r.seed, device)
    run = Run(r, world, device, dataset, players, streams, stepper, feeder, Counters(),
              NonFinitePolicy(r.health, resume.get("skipped_steps", 0) if resume else 0),
              HealthMonitor(r.health, device, lambda: reference_images(dataset, r.train.num_samples)),
              fixed_z, fixed_labels)
    run.scheduled = Scheduled(r, players, stepper, get_host().registry)
    if r.eval.metrics:  # every rank: evaluation is shared among them
        from gankit.eval.evaluator import Evaluator

        run.evaluator = Evaluator(r, device, lambda: build_dataset(r), registry=get_host().registry,
                                  log=lambda text: print(text, file=sys.stderr, flush=True) if world.is_main else None)
        run.notices += run.evaluator.prepare()  # missing Inception weights: refused, or skipped and said so
    if resume is not None:
        _restore(run, resume, run_dir)
    else:  # rank 0 names the run; every rank needs the name (checkpoint paths in messages)
        initialised = initialise_from(players, r.init_from, r.init_from_parts) if r.init_from else None
        run.run_dir, run.run_id = world.broadcast(create_run_dir(r.out_dir, r.name) if world.is_main else None)
        if world.is_main:  # the run keeps its own copy of every .py plugin
            r.plugins, run.counters.plugin_files = copy_plugins(run.run_dir, r.plugins, r._source_dir)
    run.info = provenance(list(overrides), source, run.run_id, device, world.size)
    # What the numbers ran with: the TF32 switches, and how each step's batch was split.
    run.info["tf32"] = speed.tf32_state()
    run.info["batch"] = {"step": r.data.batch_size, "per_process": feeder.batch_size,
                         "per_round": feeder.batch_size // r.train.accumulate, "accumulate": r.train.accumulate}
    run.info["plugin_files"] = run.counters.plugin_files
    if resume is None and r.init_from:
        run.info["init_from"] = initialised
    if resume is not None:  # the run's first overrides stay its overrides; each resume's are added
        first = previous_provenance(run.run_dir)
        run.info.update(overrides=first.get("overrides", []), recipe_file=first.get("recipe_file"),
                        resumes=[*first.get("resumes", []), list(overrides)])
    if world.is_main:
        run.lock = RunLock(run.run_dir).acquire()  # a second process on the same run is refused
        ckpt_io.remove_stale_temporaries(run.run_dir / "checkpoints")  # left by a killed run
        remove_stale_files(run.run_dir)
        if resume is not None and repair_record(run.run_dir):
            run.notices.append(f"repaired {run.run_dir / 'metrics.jsonl'}: cut a row torn by the killed run")
        write_recipe(run.run_dir, resolved(r), run.info)
    return run


def initialise_from(players: Players, source: str, parts: list[str]) -> dict[str, Any]:
    """Load ``parts`` of a run's (or checkpoint's) weights into the new run's players; what was loaded."""
    import hashlib

    from gankit.training.checkpoint import find_checkpoint, load_checkpoint, load_state

    path = find_checkpoint(source)
    ck = load_checkpoint(path)
    for part in parts:
        load_state(players.G if part == "generator" else players.D, ck[part], f"{part} (init_from)", str(path))
    if players.ema is not None and "generator" in parts:  # the average starts from the weights it averages
        players.ema.module.load_state_dict(players.G.state_dict())
    return {"checkpoint": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "run_id": ck.get("run_id"), "step": ck.get("step"), "parts": list(parts)}


def _restore(run: Run, ck: dict[str, Any], run_dir: Path) -> None:
    where = str(run_dir)
    run.run_dir, run.run_id = run_dir, ck["run_id"]
    run.players.restore(ck, where)
    restore_components(run.stepper, ck, where)
    run.counters = Counters.from_checkpoint(ck)
    run.feeder.epoch, run.feeder.batch_in_epoch = run.counters.epoch, run.counters.batch_in_epoch
    run.last_saved_step = ck["step"]
    run.streams.restore(rank_rng(ck, run.world, where))
