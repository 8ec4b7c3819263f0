"""What a recipe's ``schedules:`` may target, checked with the rest of the recipe."""

from __future__ import annotations

import re

from gankit.core.registry import signature_of
from gankit.recipe.components import check_arguments

# target pattern -> what it sets (for messages)
TARGETS = {
    r"optim\.[gd]\.lr": "a player's learning rate",
    r"optim\.[gd]\.betas\.[01]": "a player's Adam beta (0: β1, 1: β2)",
    r"regularizers\.\d+\.\w+": "an argument of a regulariser (regularizers.0.gamma)",
    r"train\.ema\.half_life_kimg": "the EMA's half-life in thousands of images",
    r"augment\.p": "the augmentation probability",
}
EXAMPLES = "optim.g.lr, optim.d.betas.1, regularizers.0.gamma, train.ema.half_life_kimg, augment.p"


def schedule_problems(recipe, host, origin) -> list[str]:
    """Each schedule's name and arguments, and whether its target exists in this recipe."""
    problems = []
    reg = host.registry("schedules")
    targets = [t for s in recipe.schedules for t in s.targets]
    for i, spec in enumerate(recipe.schedules):
        path = f"schedules.{i}"
        if spec.name not in reg:
            problems.append(f"{path}.name: {reg.unknown_message(spec.name)}")
        else:
            found, _ = check_arguments(path, f"schedule '{spec.name}'", reg.get(spec.name), spec.args,
                                       other_keys=("name", "target"), origin=origin)
            problems += found
        for target in spec.targets:
            problems += [f"{path}.target: {p}" for p in _target_problems(recipe, target, host)]
    for target in dict.fromkeys(t for t in targets if targets.count(t) > 1):
        problems.append(f"schedules: {target} is scheduled {targets.count(target)} times; give each "
                        "hyperparameter one schedule")
    return problems


def _argument_default(host, kind: str, name: str, arg: str):
    """A registered component's default for ``arg`` (its signature's: written once, there)."""
    sig = signature_of(host.registry(kind).get(name)) if name in host.registry(kind) else None
    param = sig.parameters.get(arg) if sig is not None else None
    return None if param is None else param.default


def _target_problems(recipe, target: str, host) -> list[str]:
    if not any(re.fullmatch(pattern, target) for pattern in TARGETS):
        return [f"'{target}' is not a hyperparameter gankit can schedule; schedulable: {EXAMPLES}"]
    parts = target.split(".")
    if parts[0] == "regularizers":
        index = int(parts[1])
        if index >= len(recipe.regularizers):
            return [f"'{target}': the recipe has {len(recipe.regularizers)} regulariser(s) (regularizers.0 ...)"]
    if parts[:2] == ["train", "ema"] and recipe.train.ema is None:
        return [f"'{target}' needs an EMA: set train.ema (e.g. {{half_life_kimg: 0}})"]
    if parts[0] == "augment":
        if recipe.augment is None:
            return [f"'{target}' needs an augmentation: set augment (e.g. {{name: ada, target: null}})"]
        if recipe.augment.name == "ada" and recipe.augment.args.get(
                "target", _argument_default(host, "augmentations", "ada", "target")) is not None:
            return [f"'{target}': augment ada's controller sets p already (augment.target); set "
                    "augment.target: null to schedule p instead"]
    if parts[0] == "optim" and parts[2] == "betas":
        spec = getattr(recipe.optim, parts[1])
        if "betas" not in spec.args and spec.name not in ("adam", "adamw"):
            return [f"'{target}': optimizer '{spec.name}' has no betas"]
    return []


def schedule_warnings(recipe) -> list[str]:
    """Schedules that end (``total_nimg``) before the run does, one warning per end point.

    Past ``total_nimg`` a schedule holds its final value, so a run longer than its schedules trains the
    rest of the way at fixed values, usually because ``train.steps`` was raised and the schedules were not.
    The run's length is ``train.steps`` × ``train.d_steps`` × ``data.batch_size`` images on one process
    (under torchrun every process adds its batch, so the run is longer still). A recipe with
    ``train.epochs`` alone is not checked: its length depends on the dataset, which validation does not read.
    """
    t = recipe.train
    if not t.steps:
        return []
    per_step = t.d_steps * recipe.data.batch_size
    run = t.steps * per_step
    how = f"train.steps {t.steps:,} × data.batch_size {recipe.data.batch_size}" + (
        f" × train.d_steps {t.d_steps}" if t.d_steps > 1 else "")
    short: dict[float, list[int]] = {}  # total_nimg -> the schedules that end there
    for i, spec in enumerate(recipe.schedules):
        total = spec.args.get("total_nimg")
        if isinstance(total, (int, float)) and not isinstance(total, bool) and total < run:
            short.setdefault(float(total), []).append(i)
    warnings = []
    for total, indices in short.items():
        names = ", ".join(f"schedules.{i} ({', '.join(recipe.schedules[i].targets)})" for i in indices)
        one = len(indices) == 1
        warnings.append(
            f"{names} {'ends' if one else 'end'} at total_nimg {total:,.0f} images, but the run is {run:,} "
            f"images ({how}): {'its final value is' if one else 'their final values are'} held flat for the "
            f"last {1 - total / run:.0%} of the run, from step {int(total // per_step) + 1:,}. To anneal over the "
            f"whole run, set total_nimg: {run} (e.g. schedules.{indices[0]}.total_nimg={run}); if holding the "
            "final value is intended, ignore this.")
    return warnings
