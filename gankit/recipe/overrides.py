"""``key.path=value`` overrides: parsed as YAML, applied to a recipe's raw dict, each remembered.

An override that changes a component's ``name`` (``loss.name=hinge``)
starts that component afresh: the arguments the file gave the old
component are dropped, and only those the overrides also give are kept, so
``loss.name=lsgan`` never inherits BCE's ``real_label``. The data section
keeps its own keys (image size, batch size, workers, ...).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from gankit.recipe.schema import DataSection

DATA_KEYS = tuple(n for n in DataSection.model_fields if n != "name")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'train.steps=10'`` -> (['train', 'steps'], 10); values parse as YAML."""
    key, sep, value = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(p.strip() for p in parts):
        raise ValueError(f"override '{text}' is not of the form key.path=value")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except (yaml.YAMLError, RecursionError):
        parsed = value  # not YAML: take it as the plain string it looks like
    return [p.strip() for p in parts], parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The recipe with overrides applied, each override's path, and syntax problems."""
    raw = copy.deepcopy(raw)
    origins: dict[str, str] = {}
    problems: list[str] = []
    renamed: list[tuple[list[str], dict[str, Any]]] = []  # components whose name an override changed
    for text in overrides:
        try:
            parts, value = parse_override(text)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        node = raw
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                problems.append(
                    f"{'.'.join(parts[: i + 1])}: is not a section, cannot set '{'.'.join(parts)}' "
                    f"(from override '{text}')"
                )
                break
            node = child
        else:
            if len(parts) > 1 and parts[-1] == "name" and isinstance(node.get("name"), str) and node.get("name") != value:
                renamed.append((parts[:-1], node))
            node[parts[-1]] = value
            origins[".".join(parts)] = text
    for path, node in renamed:  # a new component: only what the overrides give it, beside the section's own keys
        prefix = ".".join(path) + "."
        own = DATA_KEYS if path == ["data"] else ()
        for key in [k for k in node if k != "name" and k not in own and prefix + k not in origins]:
            del node[key]
    return raw, origins, problems
