"""Recipe values no run can use, whatever their keys and types say: refused with a clear problem.

A recipe is data from anywhere, so before validation looks at (copies,
prints) its values the tree is walked once: YAML aliases that expand to a
huge tree ("billion laughs": ten lines, a billion values), an alias inside its
own anchor (a tree that contains itself), nesting deeper than any recipe
needs, integers beyond 64 bits, NUL characters and lone surrogates (which no
file name or log line can hold). After the schema, :func:`value_problems`
catches values its types allow but a run cannot use.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gankit.recipe.schema import Recipe

MAX_VALUES = 100_000  # values in a recipe once its aliases are expanded; real recipes hold a few dozen
MAX_DEPTH = 50  # nesting levels; real recipes use four
INT_RANGE = (-(2**63), 2**63 - 1)  # integers a run can use: sizes, counts, intervals (torch's int64)
SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.manual_seed accepts
SEEDS = ("seed", "eval.seed")
MAX_WORKERS = 256  # data loader processes: more is a fork bomb, not a speed-up
MAX_NAME_BYTES = 255  # a folder name, on every common file system
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def _children(node: Any) -> list[tuple[Any, Any]]:
    if isinstance(node, dict):
        return list(node.items())
    if isinstance(node, (list, tuple)):
        return list(enumerate(node))
    return []


def _bad_value(where: str, value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        lo, hi = SEED_RANGE if where in SEEDS else INT_RANGE
        if not lo <= value <= hi:
            what = "the seeds torch accepts" if where in SEEDS else "64-bit integers"
            return f"{value} is out of range ({what}: {lo} to {hi})"
        return None
    if not isinstance(value, str):
        return None
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid unicode (a lone surrogate)"
    return None


def structure_problem(raw: Any) -> str | None:
    """Why ``raw`` is no recipe whatever its keys say, or None.

    Walks the tree once, iteratively, counting each shared (aliased) node once
    but charging its full size to every place that refers to it, so a
    billion-laughs document is refused after ~``MAX_VALUES`` steps of work.
    """
    sizes: dict[int, int] = {}  # id -> values under that node, aliases expanded
    active: set[int] = {id(raw)}  # the nodes on the current path: meeting one again is a cycle
    stack = [[raw, "", _children(raw), 0, 1]]  # node, path, children, next child, size so far
    while stack:
        frame = stack[-1]
        node, path, kids, i, size = frame
        if size > MAX_VALUES:
            return (f"{path or 'the recipe'}: its YAML aliases expand to more than {MAX_VALUES:,} values "
                    "(a 'billion laughs' document?)")
        if i == len(kids):
            stack.pop()
            active.discard(id(node))
            sizes[id(node)] = size
            if stack:
                stack[-1][3] += 1
                stack[-1][4] += size
            continue
        key, child = kids[i]
        where = f"{path}.{key}" if path else str(key)
        bad = _bad_value("", key) or _bad_value(where, child)
        if bad:
            return f"{where}: {bad}"
        if not isinstance(child, (dict, list, tuple)):
            frame[3], frame[4] = i + 1, size + 1
        elif id(child) in active:
            return f"{where}: refers to itself (a YAML alias inside its own anchor)"
        elif id(child) in sizes:
            frame[3], frame[4] = i + 1, size + sizes[id(child)]
        elif len(stack) >= MAX_DEPTH:
            return f"{where}: nested more than {MAX_DEPTH} levels deep"
        else:
            active.add(id(child))
            stack.append([child, where, _children(child), 0, 1])
    return None


def value_problems(recipe: Recipe) -> list[str]:
    """Values the schema's types allow but no run can use."""
    problems = []
    if recipe.data.workers > MAX_WORKERS:
        problems.append(f"data.workers: {recipe.data.workers} processes is more than gankit starts (at most {MAX_WORKERS})")
    if not DEVICE.fullmatch(recipe.device):
        problems.append(f"device: '{recipe.device}' is not a device gankit trains on; use auto, cpu, cuda or cuda:N")
    name = Path(recipe.name)
    if not recipe.name.strip() or name.is_absolute() or ".." in name.parts:
        problems.append(f"name: {recipe.name!r} must be a folder name under out_dir (not empty, absolute or with '..')")
    elif any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for part in name.parts):
        problems.append(f"name: a folder name is at most {MAX_NAME_BYTES} bytes (file systems refuse longer ones); "
                        f"give a shorter name")
    return problems
