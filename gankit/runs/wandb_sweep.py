"""The same sweep for wandb's sweep agents: a sweep configuration file.

    gankit sweep recipes/quickstart.yaml --grid loss.name=bce,hinge --seeds 3 --wandb-sweep sweep.yaml
    wandb sweep sweep.yaml            # prints the sweep id
    wandb agent ENTITY/PROJECT/ID     # on each machine: runs `gankit run ...` per combination

The file is wandb's format: ``method: grid`` over the grid axes and ``seed``,
each a parameter with ``values``, and ``command``::

    [gankit, run, RECIPE, PLAIN OVERRIDES..., sweep="NAME", log.wandb.group="NAME", ${args_no_hyphens}]

The agent replaces ``${args_no_hyphens}`` with one ``name=value`` per
parameter, the value written with Python's ``str()``
(``wandb.sdk.launch.sweeps.utils.create_sweep_command_args``); ``gankit run``
reads each as an override (nested keys included) parsed as YAML. A value
whose ``str()`` would not read back as the same YAML value (``1e-05`` reads
as a string, ``None`` is not YAML's null) is written as the text given on the
command line, which reads back exactly as in a local sweep.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from gankit.recipe.load import load_recipe
from gankit.runs.sweep import Sweep


def _value(text: str) -> Any:
    """The parameter value wandb will pass back through ``str()``: the parsed value when that round-trips."""
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return text
    try:
        back = yaml.safe_load(str(value))
    except yaml.YAMLError:
        return text
    return value if back == value and type(back) is type(value) else text


def sweep_config(sweep: Sweep, recipe_arg: str) -> dict[str, Any]:
    """wandb's sweep configuration for ``sweep`` (the recipe as the agents' working directory will find it)."""
    base = load_recipe(sweep.recipe, sweep.overrides)
    quoted = yaml.safe_dump(sweep.name, default_style='"').strip()  # a quoted YAML string: any name survives
    parameters: dict[str, Any] = {key: {"values": [_value(v) for v in values]} for key, values in sweep.grid.items()}
    parameters["seed"] = {"values": list(sweep.seeds)}
    config: dict[str, Any] = {
        "name": sweep.name,
        "program": "gankit",  # wandb's agent expects a program; the command below does not use it
        "method": "grid",
        "project": base.log.wandb.project,
        "parameters": parameters,
        "command": ["gankit", "run", recipe_arg, *sweep.overrides, f"sweep={quoted}",
                    f"log.wandb.group={quoted}", "${args_no_hyphens}"],
    }
    if base.log.wandb.entity:
        config["entity"] = base.log.wandb.entity
    return config


def write_wandb_sweep(sweep: Sweep, recipe_arg: str, path: str | Path) -> Path:
    path = Path(path)
    config = sweep_config(sweep, recipe_arg)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (f"# wandb sweep for {sweep.name}: {len(sweep.jobs)} runs; written by gankit sweep.\n"
              f"#   wandb sweep {path}    then, on each machine:    wandb agent ENTITY/PROJECT/SWEEP_ID\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(header + yaml.safe_dump(config, sort_keys=False, width=120), encoding="utf-8")
    os.replace(tmp, path)
    return path
