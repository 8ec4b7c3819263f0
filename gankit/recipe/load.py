"""Read a recipe file, apply ``key.path=value`` overrides, validate everything.

Validation is complete before any model is built or any data is read, and
reports every problem at once: unknown keys (with did-you-mean), wrong types,
unknown component names, arguments a component does not accept, metrics,
schedules and values no run can use. A section the schema refuses does not
hide the others: they are checked on what remains valid (:func:`_partial`).
Every default is the schema's (:func:`gankit.recipe.schema.default_of`).

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

from gankit.core.errors import GankitError, PluginError, RecipeError, RegistryError, suggestion
from gankit.core.plugins import PluginHost, get_host
from gankit.recipe.components import check_arguments
from gankit.recipe.hostile import MAX_DEPTH, structure_problem, value_problems
from gankit.recipe.optimizers import OPTIMIZERS
from gankit.recipe.overrides import DATA_KEYS, apply_overrides, parse_override  # noqa: F401 (parse_override: re-exported)
from gankit.recipe.schema import OptimizerSpec, Recipe, default_of, section_fields

# Component sections: (dotted path, registry kind, arguments gankit passes itself).
COMPONENTS = (
    ("data", "datasets", ("image_size", "channels")),
    ("generator", "generators", ("image_size", "channels")),
    ("discriminator", "discriminators", ("image_size", "channels")),
    ("loss", "losses", ()),
)
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


def _partial(raw: dict[str, Any], exc: ValidationError) -> tuple[Recipe | None, list[str]]:
    """The recipe without what the schema refused (defaults in its place), and the refused keys' paths.

    A refused key is dropped (a list holding a refused item is dropped
    whole, so no index shifts); a missing required one gets an empty
    placeholder. The checks run on this recipe after the schema's report
    nothing about those paths: the schema has said what is wrong there.
    """
    raw, refused = copy.deepcopy(raw), []
    for _ in range(3):  # dropping a key can uncover a required one missing
        for err in exc.errors():
            loc, node = err["loc"], raw
            refused.append(_loc(loc))
            for i, part in enumerate(loc):
                child = node.get(part) if isinstance(node, dict) else None
                if err["type"] == "missing" and i == len(loc) - 1 and isinstance(node, dict):
                    node[part] = {"name": ""} if len(loc) == 1 and part in ("generator", "discriminator") else ""
                elif isinstance(child, list) or i == len(loc) - 1 or not isinstance(child, dict):
                    node.pop(part, None) if isinstance(node, dict) else None
                else:
                    node = child
                    continue
                break
        try:
            return Recipe.model_validate(raw), refused
        except ValidationError as again:
            exc = again
    return None, refused


def _beside(problems: list[str], refused: list[str]) -> list[str]:
    """``problems`` less those about a path the schema refused (or a section holding one)."""
    def clear(problem: str) -> bool:
        path = problem.split(":", 1)[0]
        return not any(path == r or r.startswith(path + ".") or path.startswith(r + ".") for r in refused)
    return [p for p in problems if clear(p)]


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


def _metric_problems(recipe: Recipe, host: PluginHost, origin, coerced: dict[str, dict[str, Any]]) -> list[str]:
    """``eval.metrics`` entries (registered names, arguments their constructors take, none listed twice) and
    ``eval.best_metric`` (one of them, or one of a metric's values: prdc/recall)."""
    problems, seen = [], set()
    reg = host.registry("metrics")
    for i, entry in enumerate(recipe.eval.metrics):
        name, args = (entry, {}) if isinstance(entry, str) else (entry.name, entry.args)
        path = f"eval.metrics.{i}"
        if name not in reg:
            problems.append(f"{path}: {reg.unknown_message(name)}")
            continue
        if name in seen:
            problems.append(f"{path}: metric '{name}' is listed twice; list each metric once (rows are named by it)")
        seen.add(name)
        found, coerced_args = check_arguments(path, f"metric '{name}'", reg.get(name), args,
                                              other_keys=("name",), origin=origin)
        problems += found
        if not isinstance(entry, str):
            coerced[path] = coerced_args
    best, listed = recipe.eval.best_metric, [e if isinstance(e, str) else e.name for e in recipe.eval.metrics]
    if best is not None and best.split("/")[0] not in listed:
        problems.append(f"eval.best_metric: '{best}' is not one of eval.metrics ({', '.join(listed) or 'none listed'})"
                        f"{origin('eval.best_metric')}{suggestion(best, listed)}")
    return problems


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

    recipe, refused = None, []
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        problems += _schema_problems(exc, origin)
        recipe, refused = _partial(raw, exc)

    plugins = raw.get("plugins") or []
    for i, spec in enumerate(plugins if isinstance(plugins, list) else []):
        if isinstance(spec, str):
            try:
                host.load(spec, base_dir)
            except (PluginError, RegistryError) as exc:
                problems.append(f"plugins.{i}: {exc}")

    coerced: dict[str, dict[str, Any]] = {}
    for path, kind, injected, section in _component_sections(raw):
        default = default_of(f"{path}.name") if "." not in path else None
        name = section.get("name", default) if section is not None else default
        if not isinstance(name, str):
            continue  # already reported by the schema
        reg = host.registry(kind)
        if name not in reg:
            first, _, rest = reg.unknown_message(name).partition("\n")
            why = host.why_missing()
            problems.append(f"{path}.name: {first}{origin(path + '.name')}\n{rest}" + (f"\n{why}" if why else ""))
            continue
        keys = DATA_KEYS if path == "data" else ()
        args = {k: v for k, v in (section or {}).items() if k != "name" and k not in keys}
        found, coerced[path] = check_arguments(
            path, f"{reg.singular} '{name}'", reg.get(name), args,
            injected=injected, other_keys=keys + ("name",), origin=origin, defaults=True,
        )
        problems += found

    for who in ("g", "d"):
        path = f"optim.{who}"
        section = _section(raw, path) or {}
        name = section.get("name", default_of(f"{path}.name"))
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

    if recipe is not None:  # values, metrics and schedules: on the whole recipe, or on what the schema left valid
        from gankit.recipe.schedules import schedule_problems

        more = value_problems(recipe)
        if recipe.init_from is not None and not Path(recipe.init_from).expanduser().exists():
            more.append(f"init_from: '{recipe.init_from}' does not exist{origin('init_from')}; give a run "
                        "directory or a checkpoint file (relative to the working directory)")
        if recipe.train.steps is None and recipe.train.epochs is None:
            more.append("train: set train.steps (iterations) or train.epochs (passes over the data), or both")
        more += _metric_problems(recipe, host, origin, coerced) + schedule_problems(recipe, host, origin)
        problems += _beside(more, refused)

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
    recipe._source_dir = base_dir
    return recipe


def load_recipe_plugins(path: str | Path, host: PluginHost | None = None) -> None:
    """Load the plugins a recipe file names (its ``plugins:`` list), without validating the rest."""
    host = host or get_host()
    path = Path(path)
    raw = read_yaml(path)
    problems = structure_problem(raw)
    if problems:
        raise RecipeError(str(path), [problems])
    plugins = raw.get("plugins") or []
    for i, spec in enumerate(plugins if isinstance(plugins, list) else []):
        try:
            host.load(str(spec), path.parent)
        except (PluginError, RegistryError) as exc:
            raise RecipeError(str(path), [f"plugins.{i}: {exc}"]) from None


def load_recipe(path: str | Path, overrides: list[str] = (), host: PluginHost | None = None) -> Recipe:
    """Read, override and validate the recipe at ``path``."""
    path = Path(path)
    return validate(read_yaml(path), str(path), overrides, base_dir=path.parent, host=host)


def resolved(recipe: Recipe) -> dict[str, Any]:
    """The recipe as a plain dict with every default filled in (what a run uses)."""
    return recipe.model_dump(mode="json", exclude={"gankit"})


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
