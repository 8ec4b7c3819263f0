"""A trained generator in two lines: the weights of a run directory or checkpoint, ready to sample.

    G = load_generator("runs/quickstart/<run id>")
    images = gankit.generate(G, 16, seed=0)

``gankit sample``, ``gankit eval`` and ``gankit export`` load their generator
here, so all of them see the same network.
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


def load_checkpoint_generator(run_or_checkpoint: str | Path, *, ema: bool = True,
                              device: str | torch.device = "cpu") -> LoadedGenerator:
    """:func:`load_generator` with the recipe and checkpoint it read."""
    from gankit.recipe.build import build_generator, resolve_device
    from gankit.rundir.checkpoint import find_checkpoint, load_checkpoint, load_state
    from gankit.rundir.layout import stored_recipe

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
    G.eval().requires_grad_(False)
    return LoadedGenerator(G, recipe, ckpt, path, averaged is not None)


def load_generator(run_or_checkpoint: str | Path, *, ema: bool = True,
                   device: str | torch.device = "cpu") -> nn.Module:
    """The generator of a run directory (its ``checkpoints/last.pt``) or of a checkpoint file.

    - The run's plugins are loaded first, ``.py`` files from the run's own
      copies (``RUN/plugins/``), so this works from any working directory.
    - ``ema=True`` gives the EMA weights when the run kept an EMA (what its
      samples and evaluations used); ``ema=False`` the raw generator's.
    - ``device``: "cpu" (default), "cuda", "auto", or a torch.device.

    G comes back in eval mode without gradients. :func:`gankit.generate` and
    ``gankit sample`` switch its BatchNorm layers to batch statistics while
    they sample (as the tutorial's grids and the run's own samples do); call
    ``G(z)`` yourself and BatchNorm uses its running statistics instead.
    """
    return load_checkpoint_generator(run_or_checkpoint, ema=ema, device=device).G
