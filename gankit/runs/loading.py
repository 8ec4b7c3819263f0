"""A trained generator in two lines: the weights of a run directory or checkpoint, ready to sample.

    G = load_generator("runs/quickstart/<run id>")
    images = gankit.generate(G, 16, seed=0)

``gankit sample``, ``gankit eval`` and ``gankit export`` load their generator
here, so all of them see the same network, in the same sampling mode: the
run's ``sampling.batchnorm`` (:mod:`gankit.sampling.batchnorm`), so that
``G(z)`` is what the run's grids, ``gankit.generate`` and every export give.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gankit.core.errors import CheckpointError
from gankit.recipe.schema import Recipe


@dataclass
class LoadedGenerator:
    """What :func:`load_checkpoint_generator` found: the module and where it came from."""

    G: nn.Module
    recipe: Recipe
    checkpoint: dict[str, Any]
    path: Path  # the checkpoint file
    ema: bool  # whether G holds the EMA weights
    batchnorm: str = "running"  # G's BatchNorm sampling mode (gankit.sampling.MODES)
    # where standing statistics came from: "checkpoint", "estimated" (on this load), or None (not used)
    standing: str | None = None


def load_checkpoint_generator(run_or_checkpoint: str | Path, *, ema: bool = True,
                              device: str | torch.device = "cpu", batchnorm: str | None = None) -> LoadedGenerator:
    """:func:`load_generator` with the recipe and checkpoint it read."""
    from gankit.recipe.build import build_generator, resolve_device
    from gankit.rundir.checkpoint import find_checkpoint, load_checkpoint, load_state
    from gankit.rundir.layout import stored_recipe
    from gankit.sampling.batchnorm import check_mode

    path = find_checkpoint(run_or_checkpoint)
    ckpt = load_checkpoint(path)
    recipe = stored_recipe(ckpt, path)
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    G = build_generator(recipe).to(device)
    averaged = ckpt.get("ema") if ema else None
    if ema and averaged is not None and "generator" not in averaged:
        raise CheckpointError(f"checkpoint '{path}' has a malformed EMA state (no 'generator')")
    # The EMA generator, when the run kept one, is what the run's own samples and evaluations used.
    load_state(G, averaged["generator"] if averaged else ckpt["generator"], "generator", str(path))
    mode = check_mode(batchnorm, "batchnorm") if batchnorm is not None else recipe.sampling.batchnorm
    loaded = LoadedGenerator(G, recipe, ckpt, path, averaged is not None, mode)
    _prepare(loaded)
    return loaded


def _prepare(loaded: LoadedGenerator) -> None:
    """The loaded G in its sampling mode; standing statistics from the checkpoint when it holds G's own."""
    from gankit.sampling.batchnorm import has_batchnorm, prepare_for_sampling

    G, s = loaded.G, loaded.recipe.sampling
    stored = loaded.checkpoint.get("sampling") or {}
    standing = None
    if loaded.batchnorm == "standing" and has_batchnorm(G):
        # The checkpoint's statistics are of the generator it sampled with (EMA or raw), at its step.
        fits = (stored.get("standing") is not None and stored.get("generator") == ("ema" if loaded.ema else "raw")
                and stored.get("step") == loaded.checkpoint.get("step"))
        standing = stored["standing"] if fits else None
        loaded.standing = "checkpoint" if fits else "estimated"
    prepare_for_sampling(G, loaded.batchnorm, standing, batches=s.standing_batches, batch_size=s.standing_batch_size,
                         seed=loaded.recipe.seed)


def load_generator(run_or_checkpoint: str | Path, *, ema: bool = True,
                   device: str | torch.device = "cpu", batchnorm: str | None = None) -> nn.Module:
    """The generator of a run directory (its ``checkpoints/last.pt``) or of a checkpoint file.

    - The run's plugins are loaded first, ``.py`` files from the run's own
      copies (``RUN/plugins/``), so this works from any working directory.
    - ``ema=True`` gives the EMA weights when the run kept an EMA (what its
      samples and evaluations used); ``ema=False`` the raw generator's.
    - ``device``: "cpu" (default), "cuda", "auto", or a torch.device.

    - ``batchnorm``: how BatchNorm layers normalise (running, standing,
      batch); default: the run's ``sampling.batchnorm``, what its grids,
      evaluations and ``gankit sample`` used.

    G comes back in eval mode without gradients, ready to sample: ``G(z)``,
    :func:`gankit.generate` and ``gankit export``'s files give the same
    images. Standing statistics come from the checkpoint (the final one,
    and any of a step that sampled, holds its own), or are estimated once
    here for a checkpoint without them (a step that did not sample, an
    older run, or ``ema=False`` on a run with an EMA).
    """
    return load_checkpoint_generator(run_or_checkpoint, ema=ema, device=device, batchnorm=batchnorm).G
