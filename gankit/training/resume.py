"""``gankit run --resume``: the recipe a checkpoint was trained with, plus allowed overrides.

Only settings that do not change the model, the data or the optimisation may
change on resume: how long to train, how often to log, sample, checkpoint and
evaluate, the logging, evaluation and health sections, the device, the
number of data workers, and how the models run (precision, memory layout,
compilation, deterministic kernels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gankit.core.errors import RecipeError
from gankit.recipe.load import resolved, validate
from gankit.recipe.schema import Recipe
from gankit.training.checkpoint import find_checkpoint, load_checkpoint

ALLOWED = (
    "train.steps", "train.epochs", "train.sample_every", "train.checkpoint_every", "train.log_every", "train.keep_every",
    "eval", "log", "health", "device", "data.workers", "data.cache_dir", "out_dir",
    "train.precision", "train.channels_last", "train.compile", "train.deterministic", "train.tf32",
    "train.accumulate",  # the same batch in more (or fewer) rounds: a resume on a smaller GPU
)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def _allowed(key: str) -> bool:
    return any(key == a or key.startswith(a + ".") for a in ALLOWED)


def run_dir_of(ckpt_path: Path) -> Path:
    """The run directory of a checkpoint file (``RUN/checkpoints/last.pt``)."""
    return Path(ckpt_path).resolve().parent.parent


def stored_recipe(ckpt: dict[str, Any], ckpt_path: Path, overrides: list[str] = ()) -> Recipe:
    """A checkpoint's recipe, validated, its plugins loaded from the run's own copies.

    The run's copies of its ``.py`` plugins are found relative to the run
    directory, from any working directory; a warning names a plugin whose
    original file has changed since (the copy is what the run trained with).
    """
    import warnings

    from gankit.core.plugins import PluginWarning
    from gankit.training.rundir import plugin_changes

    run_dir = run_dir_of(ckpt_path)
    for notice in plugin_changes(run_dir, ckpt.get("plugin_files", [])):
        warnings.warn(notice, PluginWarning, stacklevel=2)
    return validate(ckpt["recipe"], f"{ckpt_path} (the run's recipe)", list(overrides), base_dir=run_dir)


def prepare_resume(path: str | Path, overrides: list[str]) -> tuple[Recipe, dict[str, Any], Path]:
    """The recipe to continue with, the loaded checkpoint and the run directory."""
    ckpt_path = find_checkpoint(path)
    ckpt = load_checkpoint(ckpt_path)
    run_dir = ckpt_path.parent.parent
    source = f"{ckpt_path} (the run's recipe)"
    recipe = stored_recipe(ckpt, ckpt_path, overrides)
    # Both resolved: a key added to the schema after the checkpoint was written has its default on both sides.
    before = _flatten(resolved(validate(ckpt["recipe"], source, [], base_dir=run_dir_of(ckpt_path))))
    after = _flatten(resolved(recipe))
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    refused = [
        f"{k}: cannot change when resuming (was {before.get(k)!r}, now {after.get(k)!r}); "
        "start a new run to change it"
        for k in changed if not _allowed(k)
    ]
    if refused:
        refused.append("allowed on resume: " + ", ".join(ALLOWED))
        raise RecipeError(source, refused)
    return recipe, ckpt, run_dir
