"""The run directory: ``<out_dir>/<name>/<run id>/``.

    recipe.yaml          the resolved recipe, with versions and overrides under `gankit:`
    metrics.jsonl        one JSON object per logged step (gankit.loggers.local)
    samples/             fixed-noise grids, step_0000500.png, ...
    checkpoints/last.pt  the latest checkpoint (best.pt: the best FID so far)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

import gankit
from gankit.errors import GankitError
from gankit.plugins import get_host
from gankit.training.distributed import resume_command


def new_run_id() -> str:
    # os.urandom, not the seeded generators: naming a run must not move any random stream.
    return time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(2).hex()


def create_run_dir(out_dir: str, name: str) -> tuple[Path, str]:
    run_id = new_run_id()
    run_dir = Path(out_dir) / name / run_id
    try:
        for sub in ("samples", "checkpoints"):
            (run_dir / sub).mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        raise GankitError(f"cannot create the run directory '{run_dir}': {exc.strerror}; check out_dir") from None
    return run_dir, run_id


def provenance(overrides: list[str], source: str | None, run_id: str, device: torch.device,
               world_size: int = 1) -> dict[str, Any]:
    """What a run records about how it was made (the recipe's `gankit:` key)."""
    return {
        "version": gankit.__version__,
        "run_id": run_id,
        "recipe_file": source,
        "overrides": list(overrides),
        "plugins": {p.name: p.version for p in get_host().plugins.values()},
        "torch": str(torch.__version__),
        "python": sys.version.split()[0],
        "device": str(device),  # rank 0's
        "world_size": world_size,  # processes under torchrun (1 without it)
    }


def write_recipe(run_dir: Path, resolved: dict[str, Any], info: dict[str, Any]) -> None:
    text = (
        f"# Resolved recipe of run {info['run_id']}; resume with: {resume_command(run_dir)}\n"
        + yaml.safe_dump({**resolved, "gankit": info}, sort_keys=False, width=100)
    )
    tmp = run_dir / ".recipe.yaml.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, run_dir / "recipe.yaml")
