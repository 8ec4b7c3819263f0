"""Read a recipe file, apply ``key.path=value`` overrides, validate everything.

Validation is complete before any model is built or any data is read, and
reports every problem at once: unknown keys (with did-you-mean), wrong types,
unknown component names, and arguments a component does not accept.

Hostile YAML is refused before anything looks at its values (see
:mod:`gankit.recipe.hostile`); Python tags never construct anything
(``yaml.safe_load``).
"""

from __future__ import annotations

import copy
import reprlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gankit.errors import GankitError, PluginError, RecipeError, RegistryError, suggestion
from gankit.plugins import PluginHost, get_host
from gankit.recipe.components import check_arguments
from gankit.recipe.hostile import MAX_DEPTH, structure_problem, value_problems
from gankit.recipe.optimizers import OPTIMIZERS
from gankit.recipe.schema import DataSection, OptimizerSpec, Recipe, section_fields

# Component sections: (dotted path, registry kind, arguments gankit passes itself).
COMPONENTS = (
    ("data", "datasets", ("image_size", "channels")),
    ("generator", "generators", ("image_size", "channels")),
    ("discriminator", "discriminators", ("image_size", "channels")),
    ("loss", "losses", ()),
)
DATA_KEYS = tuple(n for n in DataSection.model_fields if n != "name")
OPTIM_KEYS = tuple(n for n in OptimizerSpec.model_fields if n != "name")
_repr = reprlib.Repr()  # error messages quote a value, never a megabyte of it
_repr.maxstring, _repr.maxother, _repr.maxlist, _repr.maxdict, _repr.maxlevel = 60, 60, 5, 5, 2
_short = _repr.repr


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The recipe file as a dict, through ``yaml.safe_load`` only."""
    path = Path(path)
    if not path.is_file():
        near = sorted(p.name for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        hint = suggestion(path.name, near, prefix=f"{path.parent}/")
        raise GankitError(f"recipe file '{path}' does not exist{hint}")
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except RecursionError:
        raise RecipeError(str(path), [f"not valid YAML: nested more than Python can read (keep it under {MAX_DEPTH} levels)"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(str(path), [f"not valid YAML{where}: {problem}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GankitError(f"recipe file '{path}' cannot be read: {exc}") from None
    if not isinstance(raw, dict):
        raise RecipeError(str(path), [f"the top level must be a mapping of keys, got {type(raw).__name__}"])
    return raw


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
            node[parts[-1]] = value
            origins[".".join(parts)] = text
    return raw, origins, problems


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def _schema_problems(exc: ValidationError, origin) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = err["loc"]
        path = _loc(loc)
        if err["type"] == "extra_forbidden":
            parent = loc[:-1]
            prefix = _loc(parent) + "." if parent else ""
            hint = suggestion(str(loc[-1]), section_fields(parent) or [], prefix=prefix)
            problems.append(f"{path}: unknown key{origin(path)}{hint}")
        elif err["type"] == "missing":
            problems.append(f"{path}: missing; this key is required")
        else:
            problems.append(f"{path}: {err['msg']} (got {_short(err['input'])}){origin(path)}")
    return problems


def _component_sections(raw: dict[str, Any]):
    """(path, registry kind, injected arguments, section dict or None) of every component in ``raw``."""
    for path, kind, injected in COMPONENTS:
        yield path, kind, injected, _section(raw, path)
    if isinstance(raw.get("augment"), dict):
        yield "augment", "augmentations", (), raw["augment"]
    regularizers = raw.get("regularizers")
    for i, section in enumerate(regularizers if isinstance(regularizers, list) else []):
        if isinstance(section, dict):
            yield f"regularizers.{i}", "regularizers", (), section


def _section(raw: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: Any = raw
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def validate(
    raw: dict[str, Any],
    source: str = "<recipe>",
    overrides: list[str] = (),
    base_dir: Path | None = None,
    host: PluginHost | None = None,
) -> Recipe:
    """A validated :class:`Recipe`, or a :class:`RecipeError` listing every problem."""
    host = host or get_host()
    # Before anything else looks at (or copies, or prints) the values: a bomb must cost nothing.
    shape = structure_problem(raw)
    if shape:
        raise RecipeError(source, [shape])
    raw, origins, problems = apply_overrides(raw, list(overrides))
    shape = structure_problem(raw)  # what the overrides brought
    if shape:
        raise RecipeError(source, [shape])

    def origin(path: str) -> str:
        return f" (from override '{origins[path]}')" if path in origins else ""

    recipe = None
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        problems += _schema_problems(exc, origin)

    plugins = raw.get("plugins") or []
    for i, spec in enumerate(plugins if isinstance(plugins, list) else []):
        if isinstance(spec, str):
            try:
                host.load(spec, base_dir)
            except (PluginError, RegistryError) as exc:
                problems.append(f"plugins.{i}: {exc}")

    coerced: dict[str, dict[str, Any]] = {}
    for path, kind, injected, section in _component_sections(raw):
        default = "digits" if path == "data" else "bce" if path == "loss" else None
        name = section.get("name", default) if section is not None else default
        if not isinstance(name, str):
            continue  # already reported by the schema
        reg = host.registry(kind)
        if name not in reg:
            first, _, rest = reg.unknown_message(name).partition("\n")
            problems.append(f"{path}.name: {first}{origin(path + '.name')}\n{rest}")
            continue
        keys = DATA_KEYS if path == "data" else ()
        args = {k: v for k, v in (section or {}).items() if k != "name" and k not in keys}
        found, coerced[path] = check_arguments(
            path, f"{reg.singular} '{name}'", reg.get(name), args,
            injected=injected, other_keys=keys + ("name",), origin=origin,
        )
        problems += found

    for who in ("g", "d"):
        path = f"optim.{who}"
        section = _section(raw, path) or {}
        name = section.get("name", "adam")
        if not isinstance(name, str):
            continue
        if name not in OPTIMIZERS:
            hint = suggestion(name, OPTIMIZERS)
            problems.append(
                f"{path}.name: '{name}' is not a known optimizer{hint}{origin(path + '.name')}\n"
                f"    known: {', '.join(sorted(OPTIMIZERS))}"
            )
            continue
        args = {k: v for k, v in section.items() if k != "name"}
        found, coerced[path] = check_arguments(
            path, f"optimizer '{name}'", OPTIMIZERS[name], args, injected=("params",), other_keys=("name",), origin=origin
        )
        problems += found

    if recipe is not None:
        problems += value_problems(recipe)
    if recipe is not None and recipe.train.steps is None and recipe.train.epochs is None:
        problems.append("train: set train.steps (iterations) or train.epochs (passes over the data), or both")
    for i, metric in enumerate(recipe.eval.metrics if recipe is not None else []):
        reg = host.registry("metrics")
        if metric not in reg:
            problems.append(f"eval.metrics.{i}: {reg.unknown_message(metric)}")

    if problems:
        # A key can fail both the schema and the component's signature (optim.g.lr): say it once.
        raise RecipeError(source, list(dict.fromkeys(problems)))
    for path, args in coerced.items():  # keep the coerced values ("2e-4" -> 0.0002)
        *parents, leaf = path.split(".")
        node = recipe
        for part in parents:
            node = getattr(node, part)
        if leaf.isdigit():  # an item of a list section (regularizers.0)
            current = node[int(leaf)]
            node[int(leaf)] = type(current).model_validate({**current.model_dump(), **args})
        else:
            current = getattr(node, leaf)
            setattr(node, leaf, type(current).model_validate({**current.model_dump(), **args}))
    return recipe


def load_recipe(path: str | Path, overrides: list[str] = (), host: PluginHost | None = None) -> Recipe:
    """Read, override and validate the recipe at ``path``."""
    path = Path(path)
    return validate(read_yaml(path), str(path), overrides, base_dir=path.parent, host=host)


def resolved(recipe: Recipe) -> dict[str, Any]:
    """The recipe as a plain dict with every default filled in (what a run uses)."""
    return recipe.model_dump(mode="json", exclude={"gankit"})


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
