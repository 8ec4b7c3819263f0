"""The run state: everything a checkpoint holds, in one place; and what may change when a run resumes.

    state = RunState(players, gan_step, feeder, streams, world, nonfinite, recipe=recipe)
    checkpoint = state.state_dict()          # every rank calls it: it gathers the ranks' random states
    state.load_state_dict(checkpoint, where)

A checkpoint (format 2, the layout gankit has always written, so older
checkpoints resume exactly) holds, by key:

    generator, discriminator        the players' weights
    optim_g, optim_d                their optimizers
    scaler_g, scaler_d              fp16's loss scales (None otherwise)
    ema                             G's moving average (None without one)
    augment_state, loss_state       the augmentation's and the loss's own state
    regularizer_states              each regulariser's own state, in recipe order
    step, epoch, batch_in_epoch,    :class:`Counters`: where the run is, the best evaluation so far,
      images_seen, best, ...          at the top level, where every reader looks for ``step``
    skipped_steps                   non-finite updates skipped so far (the non-finite policy's)
    rng (rng_ranks, world_size)     every random stream, per rank under torchrun (:class:`Streams`)
    run_id, recipe, format, gankit_version

Each part declares its own state (``state_dict``/``load_state_dict``,
:class:`gankit.contracts.Stateful`; components name theirs with
:class:`gankit.core.resumable.Resumable`); the run state only says where it
goes. So adding a counter to a component is an edit of that component alone.

Random streams: the global torch/numpy/Python generators are the training's
own (model initialisation, noise z). Data-loader worker seeds and
augmentation each have a private generator, so how often a run samples,
checkpoints or evaluates never changes its trajectory. Under torchrun every
rank draws its own noise and augmentations (rank 0 keeps the one-process
run's streams).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gankit.contracts import Stateful
from gankit.core.errors import CheckpointError, GankitError, RecipeError
from gankit.core.version import __version__
from gankit.recipe.load import resolved, validate
from gankit.rundir.checkpoint import FORMAT_VERSION, find_checkpoint, load_checkpoint, load_optimizer, load_state
from gankit.rundir.layout import run_dir_of, stored_recipe

# Checkpoint key -> what a message calls it.
WHAT = {"generator": "generator", "discriminator": "discriminator", "optim_g": "generator optimizer",
        "optim_d": "discriminator optimizer"}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(loader_generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every random stream's state, as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": [version, list(internal), gauss],
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if loader_generator is not None:
        state["loader"] = loader_generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], loader_generator: torch.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if loader_generator is not None and "loader" in state:
        loader_generator.set_state(state["loader"])


@dataclass
class Counters:
    """Where the run is (G updates, epochs, batches, images) and what it keeps about itself; a field is resumed."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    images_seen: int = 0  # real images D has seen, all ranks together (the clock of schedules and EMA in images)
    best_fid: float | None = None  # the best FID so far: the fid_regression alert's baseline
    best: dict[str, Any] | None = None  # best.pt's evaluation: {"metric": eval.best_metric, "value": its best}
    skipped_images: int = 0  # unreadable image files skipped (data.on_bad_image: skip), each counted once
    skipped_files: list[str] = field(default_factory=list)  # their paths
    plugin_files: list[dict[str, Any]] = field(default_factory=list)  # the run's copies of its .py plugins

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, ck: dict[str, Any]) -> None:
        """From a whole checkpoint (the counters are its top-level keys); a field it lacks keeps its start value."""
        for f in fields(self):
            if f.name in ck:
                setattr(self, f.name, ck[f.name])
        if "best" not in ck and self.best_fid is not None:  # written when best.pt always followed FID
            self.best = {"metric": "fid", "value": self.best_fid}


class Streams:
    """The run's private random generators: data-loader seeds and augmentation (and, saved, the global ones)."""

    def __init__(self, seed: int, device: torch.device, augment: bool):
        self.loader = torch.Generator().manual_seed(seed)  # DataLoader worker seeds, not the training stream
        # Augmentation draws from its own generator (saved in checkpoints), not the training stream.
        self.augment = torch.Generator(device).manual_seed(seed + 1) if augment else None

    def per_rank(self, seed: int, rank: int) -> None:
        """Each rank its own noise and augmentation streams (rank 0 keeps the one-process run's)."""
        if rank == 0:
            return
        rank_seed = seed + 7919 * rank  # any distinct seed per rank
        seed_everything(rank_seed)
        if self.augment is not None:
            self.augment.manual_seed(rank_seed + 1)

    def state_dict(self) -> dict[str, Any]:
        """This process's random states: the global ones, the loader's and the augmentation's."""
        return {**rng_state(self.loader), **({"augment": self.augment.get_state()} if self.augment is not None else {})}

    def load_state_dict(self, rng: dict[str, Any]) -> None:
        set_rng_state(rng, self.loader)
        if self.augment is not None:
            self.augment.set_state(rng["augment"])


def rank_rng(ck: dict[str, Any], world, where: str) -> dict[str, Any]:
    """This rank's random states from a checkpoint; a different number of processes is refused."""
    saved_world = ck.get("world_size", 1)
    if saved_world != world.size:  # each rank's data shard and random streams depend on the world size
        raise GankitError(
            f"'{where}' was trained by {saved_world} process(es) and this run has {world.size}; resume it "
            + (f"with torchrun --nproc_per_node={saved_world} (or nodes × processes = {saved_world})"
               if saved_world > 1 else "without torchrun") + ", or start a new run")
    return ck["rng_ranks"][world.rank] if saved_world > 1 else ck["rng"]


def _state(part: Any) -> Any:
    return part.state_dict() if isinstance(part, Stateful) else None


def _restore(part: Any, state: Any, what: str, where: str) -> None:
    """``part.load_state_dict(state)``; a state that does not fit is a CheckpointError naming ``what``."""
    if isinstance(part, nn.Module):
        return load_state(part, state, what, where)
    if isinstance(part, torch.optim.Optimizer):
        return load_optimizer(part, state, what, where)
    try:
        part.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint '{where}' has a malformed {what}: {exc}") from None


class RunState:
    """Everything resumable of one run, and the one place that writes and reads it (see the module doc)."""

    def __init__(self, players, gan_step, feeder, streams: Streams, world, nonfinite, *, recipe, sampling=None):
        self.players, self.gan_step, self.feeder, self.streams = players, gan_step, feeder, streams
        self.world, self.nonfinite, self.recipe = world, nonfinite, recipe
        self.sampling = sampling  # gankit.sampling.RunSampling: the mode (and standing statistics) G is loaded in
        self.counters = Counters()
        self.run_id = ""

    def parts(self) -> dict[str, Any]:
        """Each part with a state of its own, under its checkpoint key (None: this run has no such part)."""
        p, s = self.players, self.gan_step
        return {"generator": p.G, "discriminator": p.D, "optim_g": p.opt_g, "optim_d": p.opt_d,
                "scaler_g": p.scaler_g, "scaler_d": p.scaler_d, "ema": p.ema, "augment_state": s.augment,
                "loss_state": s.loss}

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's contents now (every rank must call it: it gathers the ranks' random states)."""
        c = self.counters
        c.epoch, c.batch_in_epoch = self.feeder.epoch, self.feeder.batch_in_epoch
        rng = self.world.gather(self.streams.state_dict())
        return {
            "format": FORMAT_VERSION, "gankit_version": __version__, "run_id": self.run_id, "recipe": resolved(self.recipe),
            **c.state_dict(),
            **{key: _state(part) for key, part in self.parts().items()},
            "regularizer_states": [_state(reg) for reg in self.gan_step.regularizers],
            "rng": rng[0],  # rank 0's (the only one without torchrun)
            **({"world_size": self.world.size, "rng_ranks": rng} if self.world.distributed else {}),
            **self.nonfinite.state_dict(),
            **({"sampling": self.sampling.state(self.players.sampler, c.step,
                                                "ema" if self.players.ema is not None else "raw")}
               if self.sampling is not None else {}),
        }

    def load_state_dict(self, ck: dict[str, Any], where: str) -> None:
        """Put a checkpoint back; a part it has no state for (older checkpoints, fp32's scalers) starts afresh."""
        for key, part in self.parts().items():
            if part is not None and ck.get(key):  # None or empty: nothing saved (a disabled scaler saves {})
                _restore(part, ck[key], WHAT.get(key, key), where)
        for i, (reg, saved) in enumerate(zip(self.gan_step.regularizers, ck.get("regularizer_states") or [])):
            if saved:
                _restore(reg, saved, f"state of regularizers.{i}", where)
        self.counters.load_state_dict(ck)
        self.nonfinite.load_state_dict(ck)
        self.feeder.epoch, self.feeder.batch_in_epoch = self.counters.epoch, self.counters.batch_in_epoch
        self.streams.load_state_dict(rank_rng(ck, self.world, where))
        self.run_id = ck["run_id"]


# -- resuming: the recipe a checkpoint was trained with, plus the overrides allowed --------------
# Only settings that change neither the model, the data nor the optimisation: how long to train, how often to
# log, sample, checkpoint and evaluate, the logging, evaluation and health sections, the device, the data
# workers, and how the models run (precision, memory layout, compilation, deterministic kernels).
ALLOWED = (
    "train.steps", "train.epochs", "train.sample_every", "train.checkpoint_every", "train.log_every", "train.keep_every",
    "eval", "log", "health", "device", "data.workers", "data.cache_dir", "out_dir",
    "train.precision", "train.channels_last", "train.compile", "train.deterministic",
)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def prepare_resume(path: str | Path, overrides: list[str]) -> tuple[Any, dict[str, Any], Path]:
    """``gankit run --resume``: the recipe to continue with, the loaded checkpoint and the run directory."""
    ckpt_path = find_checkpoint(path)
    ckpt = load_checkpoint(ckpt_path)
    run_dir = ckpt_path.parent.parent
    source = f"{ckpt_path} (the run's recipe)"
    recipe = stored_recipe(ckpt, ckpt_path, overrides)
    # Both resolved: a key added to the schema after the checkpoint was written has its default on both sides.
    before = _flatten(resolved(validate(ckpt["recipe"], source, [], base_dir=run_dir_of(ckpt_path))))
    after = _flatten(resolved(recipe))
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    refused = [f"{k}: cannot change when resuming (was {before.get(k)!r}, now {after.get(k)!r}); "
               "start a new run to change it"
               for k in changed if not any(k == a or k.startswith(a + ".") for a in ALLOWED)]
    if refused:
        refused.append("allowed on resume: " + ", ".join(ALLOWED))
        raise RecipeError(source, refused)
    return recipe, ckpt, run_dir
