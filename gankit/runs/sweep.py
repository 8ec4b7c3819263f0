"""A sweep: the cross product of grid axes × seeds, each an ordinary ``gankit run``.

    gankit sweep recipes/quickstart.yaml --grid loss.name=bce,hinge --seeds 3 --jobs 2 --out runs/sweeps/loss

The sweep directory holds ``sweep.yaml`` (this module: the recipe, the plain
overrides, the grid, the seeds, and each run's settings, status, run
directory and error), ``logs/<run>.log`` (each run's output) and
``runs/<run>/<recipe name>/<run id>/`` (each run's own run directory).
Running the jobs is :mod:`gankit.runs.sweep_exec`; the wandb sweep file
:mod:`gankit.runs.wandb_sweep`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
import yaml

from gankit.core.errors import GankitError, RecipeError
from gankit.core.paths import fsync_dir
from gankit.rundir.record import SWEEP_FILE, is_run_dir

# Statuses a run keeps on --resume: its result is in (diverged: exit 3, the settings' own outcome).
FINAL = ("finished", "diverged")
FORMAT = 1


@dataclass
class Job:
    """One run of the sweep."""

    name: str  # 000_bce_seed999: index, grid values, seed
    settings: list[str]  # the sweep's overrides of this run: its grid values, then seed=N
    seed: int
    status: str = "pending"  # pending, running, finished, failed, interrupted, diverged
    run_dir: str | None = None  # relative to the sweep directory
    exit_code: int | None = None
    error: str | None = None  # the last error line of the run's output
    attempts: int = 0
    started: str | None = None
    ended: str | None = None
    seconds: float | None = None


@dataclass
class Sweep:
    dir: Path
    name: str
    recipe: str  # the recipe file, absolute
    recipe_sha256: str
    overrides: list[str]  # plain overrides: every run
    grid: dict[str, list[str]]  # axis -> its values as typed (each parsed as YAML, as `gankit run` does)
    seeds: list[int]
    cwd: str  # where the runs start (relative .py plugins are looked up here too)
    jobs: list[Job] = field(default_factory=list)
    created: str = ""

    @property
    def axes(self) -> list[str]:
        return list(self.grid)

    def out_dir(self, job: Job) -> Path:
        return self.dir / "runs" / job.name

    def log_file(self, job: Job) -> Path:
        return self.dir / "logs" / f"{job.name}.log"

    def run_dir(self, job: Job) -> Path | None:
        return self.dir / job.run_dir if job.run_dir else None

    def run_args(self, job: Job) -> list[str]:
        """The overrides ``gankit run RECIPE`` gets for ``job``: plain, grid values, seed, the sweep's own."""
        quoted = json.dumps(self.name)  # a JSON string is YAML: any name survives the override parser
        return [*self.overrides, *job.settings, f"sweep={quoted}", f"log.wandb.group={quoted}",
                f"out_dir={json.dumps(str(self.out_dir(job).resolve()))}"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for job in self.jobs:
            out[job.status] = out.get(job.status, 0) + 1
        return out


def split_values(text: str) -> list[str]:
    """``bce,hinge`` -> [bce, hinge]; commas inside [...], {...} or quotes do not split."""
    values, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i].strip())
            start = i + 1
    values.append(text[start:].strip())
    return values


def parse_grid(specs: list[str]) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, rest = spec.partition("=")
        key = key.strip()
        values = split_values(rest) if sep else []
        if not key or not sep or not all(values):
            raise GankitError(f"--grid '{spec}' is not of the form KEY=V1,V2,... (e.g. --grid loss.name=bce,hinge)")
        if key in grid:
            raise GankitError(f"--grid {key} is given twice; give all its values in one --grid {key}=V1,V2,...")
        if key == "seed":
            raise GankitError("--grid seed=...: seeds are not a grid axis; use --seeds N or --seed-list 1,2,3")
        if len(set(values)) != len(values):
            raise GankitError(f"--grid {key}: a value is listed twice ({', '.join(values)})")
        grid[key] = values
    return grid


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")[:24] or "x"


def make_jobs(grid: dict[str, list[str]], seeds: list[int]) -> list[Job]:
    jobs = []
    combos = list(itertools.product(*grid.values())) if grid else [()]
    for combo in combos:
        for seed in seeds:
            i = len(jobs)
            name = "_".join([f"{i:03d}", *(_slug(v) for v in combo), f"seed{seed}"])
            settings = [f"{k}={v}" for k, v in zip(grid, combo)] + [f"seed={seed}"]
            jobs.append(Job(name, settings, seed))
    return jobs


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _override_keys(overrides: list[str]) -> dict[str, str]:
    from gankit.recipe.overrides import parse_override  # the recipe machinery imports torch: not for reading sweeps

    keys = {}
    for text in overrides:
        try:
            keys[".".join(parse_override(text)[0])] = text
        except ValueError:
            pass  # reported by validation, with the rest
    return keys


def _base(recipe: str, overrides: list[str]) -> dict:
    """The recipe's seed, name and out_dir with the plain overrides (read raw when it does not validate:
    its problems are then reported with every other combination's)."""
    from gankit.recipe.load import apply_overrides, load_recipe, read_yaml

    try:
        r = load_recipe(recipe, overrides)
        return {"seed": r.seed, "name": r.name, "out_dir": r.out_dir}
    except RecipeError:
        raw, _, _ = apply_overrides(read_yaml(recipe), overrides)
        seed = raw.get("seed", 0)
        return {"seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else 0,
                "name": str(raw.get("name") or Path(recipe).stem), "out_dir": str(raw.get("out_dir") or "runs")}


def plan(recipe: str, overrides: list[str], grid_specs: list[str], seeds: int | None, seed_list: str | None,
         out: str | None, name: str | None) -> Sweep:
    """The whole sweep, every combination validated first (all problems reported at once)."""
    grid = parse_grid(grid_specs)
    plain = _override_keys(overrides)
    clash = [k for k in grid if k in plain]
    if clash:
        raise GankitError(f"{clash[0]} is both a plain override ('{plain[clash[0]]}') and a --grid axis; give it once")
    for key in ("sweep", "out_dir", "log.wandb.group"):
        if key in plain:
            raise GankitError(f"'{plain[key]}': gankit sweep sets {key} itself (use --name / --out)")
    if seeds is not None and seed_list is not None:
        raise GankitError("give --seeds N or --seed-list 1,2,3, not both")
    if seeds is not None and seeds < 1:
        raise GankitError(f"--seeds {seeds}: give at least 1")
    if seed_list is not None and "seed" in plain:
        raise GankitError(f"'{plain['seed']}' and --seed-list both set the seed; drop one")
    base = _base(recipe, overrides)
    if seed_list is not None:
        try:
            seed_values = [int(s) for s in split_values(seed_list)]
        except ValueError:
            raise GankitError(f"--seed-list '{seed_list}' is not a list of integers such as 1,2,3") from None
        if len(set(seed_values)) != len(seed_values):
            raise GankitError(f"--seed-list '{seed_list}' lists a seed twice")
    else:
        seed_values = [base["seed"] + i for i in range(seeds or 1)]
    name = name or (Path(out).name if out else f"{base['name']}-{time.strftime('%Y%m%d-%H%M%S')}")
    out_path = Path(out) if out else Path(base["out_dir"]) / "sweeps" / name
    if (out_path / SWEEP_FILE).is_file():
        raise GankitError(f"'{out_path}' already holds a sweep; continue it with: gankit sweep --resume {out_path}"
                          " (or choose another --out)")
    if out_path.exists() and (not out_path.is_dir() or any(out_path.iterdir())):
        raise GankitError(f"'{out_path}' exists and is not an empty folder; choose another --out")
    sweep = Sweep(out_path, name, str(Path(recipe).resolve()), sha256(Path(recipe)), list(overrides), grid,
                  seed_values, os.getcwd(), make_jobs(grid, seed_values), time.strftime("%Y-%m-%d %H:%M:%S"))
    validate_jobs(sweep, recipe)
    return sweep


def validate_jobs(sweep: Sweep, recipe: str) -> None:
    """Validate every run's recipe as ``gankit run`` would; one error listing every problem and where."""
    from gankit.recipe.load import load_recipe

    found: dict[str, list[str]] = {}
    for job in sweep.jobs:
        try:
            load_recipe(recipe, sweep.run_args(job))
        except RecipeError as exc:
            for problem in exc.problems:
                found.setdefault(problem, []).append(job.name)
    if not found:
        return
    total = len(sweep.jobs)
    problems = []
    for problem, names in found.items():
        where = "every run" if len(names) == total else \
            f"{len(names)} of {total} runs: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
        first, nl, rest = problem.partition("\n")
        problems.append(f"{first} [{where}]{nl}{rest}")
    raise RecipeError(f"sweep of {recipe} ({total} runs)", problems)


# -- sweep.yaml ---------------------------------------------------------------------------------------
def write_sweep(sweep: Sweep) -> Path:
    """Write sweep.yaml atomically (a temporary renamed into place)."""
    sweep.dir.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "sweep": sweep.name, "recipe": sweep.recipe, "recipe_sha256": sweep.recipe_sha256,
            "overrides": sweep.overrides, "grid": sweep.grid, "seeds": sweep.seeds, "cwd": sweep.cwd,
            "created": sweep.created, "runs": [asdict(j) for j in sweep.jobs]}
    path = sweep.dir / SWEEP_FILE
    tmp = sweep.dir / f".{SWEEP_FILE}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"# gankit sweep {sweep.name}; continue it with: gankit sweep --resume {sweep.dir}\n")
        yaml.safe_dump(data, f, sort_keys=False, width=120)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(sweep.dir)
    return path


def read_sweep(folder: str | Path) -> Sweep:
    folder = Path(folder)
    path = folder / SWEEP_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        jobs = [Job(**{k: v for k, v in j.items() if k in Job.__dataclass_fields__}) for j in data["runs"]]
        return Sweep(folder, str(data["sweep"]), str(data["recipe"]), str(data.get("recipe_sha256", "")),
                     list(data.get("overrides") or []), dict(data.get("grid") or {}), list(data.get("seeds") or []),
                     str(data.get("cwd") or os.getcwd()), jobs, str(data.get("created", "")))
    except FileNotFoundError:
        raise GankitError(f"'{folder}' is not a sweep directory (no {SWEEP_FILE} in it)") from None
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise GankitError(f"'{path}' is not a sweep file gankit wrote ({type(exc).__name__}: {exc})") from None


def discover_run_dir(sweep: Sweep, job: Job, exclude: set[Path] = frozenset()) -> Path | None:
    """The run directory ``gankit run`` made under the job's out_dir (the newest, outside ``exclude``)."""
    found = [p for p in sweep.out_dir(job).glob("*/*") if p.is_dir() and is_run_dir(p) and p not in exclude]
    return max(found, key=lambda p: p.name) if found else None


def relative(sweep: Sweep, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(sweep.dir.resolve()))
    except ValueError:
        return str(path.resolve())


def describe(sweep: Sweep) -> str:
    grid = " × ".join(f"{k} ({len(v)})" for k, v in sweep.grid.items())
    return (f"sweep {sweep.name}: {len(sweep.jobs)} runs = " + (f"{grid} × " if grid else "")
            + f"{len(sweep.seeds)} seed(s) {sweep.seeds}")
