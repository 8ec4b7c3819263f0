"""A run's progress and random streams: what, beside the players, a checkpoint holds for an exact resume.

Random streams: the global torch/numpy/Python generators are the training's
own (model initialisation, noise inputs, style mixing). The latents (z and
fake labels), data-loader worker seeds and augmentation each have a private
generator, so how often a run samples, checkpoints or evaluates never
changes its trajectory. The latent stream is the same on every rank (each
takes its block of every draw: :class:`gankit.training.feeding.Latents`);
under torchrun every rank draws its own noise inputs and augmentations
(rank 0 keeps the one-process run's streams), and a checkpoint holds every
rank's states.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from gankit.core.errors import GankitError
from gankit.training import checkpoint as ckpt_io


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Counters:
    """Where the run is: counted in G updates (steps), epochs, batches and images."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    images_seen: int = 0  # real images D has seen, all ranks together (the clock of schedules and EMA in images)
    best_fid: float | None = None
    skipped_images: int = 0
    plugin_files: list[dict[str, Any]] = field(default_factory=list)  # the run's copies of its .py plugins

    @classmethod
    def from_checkpoint(cls, ck: dict[str, Any]) -> Counters:
        return cls(ck["step"], ck["epoch"], ck["batch_in_epoch"], ck.get("images_seen", 0), ck.get("best_fid"),
                   ck.get("skipped_images", 0), ck.get("plugin_files", []))

    def state(self) -> dict[str, Any]:
        return asdict(self)


class Streams:
    """The run's private random generators: data-loader seeds and augmentation."""

    def __init__(self, seed: int, device: torch.device, augment: bool):
        self.loader = torch.Generator().manual_seed(seed)  # DataLoader worker seeds, not the training stream
        # Augmentation draws from its own generator (saved in checkpoints), not the training stream.
        self.augment = torch.Generator(device).manual_seed(seed + 1) if augment else None
        # z and fake labels: alike on every rank, so a step's latents do not depend on how its batch is split.
        self.latents = torch.Generator(device).manual_seed(seed + 2)

    def per_rank(self, seed: int, rank: int) -> None:
        """Each rank its own noise and augmentation streams (rank 0 keeps the one-process run's)."""
        if rank == 0:
            return
        rank_seed = seed + 7919 * rank  # any distinct seed per rank
        seed_everything(rank_seed)
        if self.augment is not None:
            self.augment.manual_seed(rank_seed + 1)

    def state(self) -> dict[str, Any]:
        """This process's random states: the global ones, the loader's and the augmentation's."""
        return {**ckpt_io.rng_state(self.loader), "latents": self.latents.get_state(),
                **({"augment": self.augment.get_state()} if self.augment is not None else {})}

    def restore(self, rng: dict[str, Any]) -> None:
        ckpt_io.set_rng_state(rng, self.loader)
        if self.augment is not None:
            self.augment.set_state(rng["augment"])
        if "latents" in rng:  # older checkpoints drew z from the training stream: the latents start afresh
            self.latents.set_state(rng["latents"])


def rank_rng(ck: dict[str, Any], world, where: str) -> dict[str, Any]:
    """This rank's random states from a checkpoint; a different number of processes is refused."""
    saved_world = ck.get("world_size", 1)
    if saved_world != world.size:  # each rank's data shard and random streams depend on the world size
        raise GankitError(
            f"'{where}' was trained by {saved_world} process(es) and this run has {world.size}; resume it "
            + (f"with torchrun --nproc_per_node={saved_world} (or nodes × processes = {saved_world})"
               if saved_world > 1 else "without torchrun") + ", or start a new run")
    return ck["rng_ranks"][world.rank] if saved_world > 1 else ck["rng"]


def component_states(stepper) -> dict[str, Any]:
    """The state the step's components keep (ADA's p and controller, path length's running mean)."""
    augment = stepper.augment
    return {
        "augment_state": augment.state_dict() if hasattr(augment, "state_dict") else None,
        "regularizer_states": [r.state_dict() if hasattr(r, "state_dict") else None for r in stepper.regularizers],
    }


def restore_components(stepper, ck: dict[str, Any], where: str) -> None:
    """Put :func:`component_states` back (older checkpoints have none: the components start afresh)."""
    augment = stepper.augment
    if ck.get("augment_state") is not None and hasattr(augment, "load_state_dict"):
        augment.load_state_dict(ck["augment_state"])
    saved = ck.get("regularizer_states") or []
    for reg, state in zip(stepper.regularizers, saved):
        if state is not None and hasattr(reg, "load_state_dict"):
            reg.load_state_dict(state)


def checkpoint(counters: Counters, players, streams: Streams, world, *, run_id: str, recipe: dict[str, Any],
               version: str, skipped_steps: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A checkpoint's contents (every rank must call it: it gathers the ranks' random states)."""
    rng = world.gather(streams.state())
    return {
        "format": ckpt_io.FORMAT_VERSION,
        "gankit_version": version,
        "run_id": run_id,
        "recipe": recipe,
        **counters.state(),
        **players.state(),
        "rng": rng[0],  # rank 0's (the only one without torchrun)
        **({"world_size": world.size, "rng_ranks": rng} if world.distributed else {}),
        "skipped_steps": skipped_steps,
        **(extra or {}),
    }
