"""The quickstart's wall time split into set-up, training, sample grids, evaluation, logging and
checkpoints (target: everything but training <= 10%).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/end_to_end.py
    .venv/bin/python benchmarks/end_to_end.py recipes/quickstart.yaml eval.metrics=[swd] eval.every=200

Runs the recipe (default: recipes/quickstart.yaml, with any key=value
overrides, its run directory in a temporary folder) in this process through
gankit's own Trainer, unchanged: the script only wraps what the trainer
calls, with timers, by wrapping the trainer's parts (``assemble``, ``save_samples``,
``save_checkpoint``, ``evaluate``, ``_log``) and by wrapping the loggers and
the progress display it creates. Time inside a wrapped call that is itself
in another wrapped call counts once, for the inner one (a grid's
``log_images`` is logging, not samples). Training is the rest of the wall
time: data, GAN steps, the loop. Interpreter start-up and the imports before
the run (torch, gankit) are not in the wall time; what the run imports on
first use is, as a user pays it (torch._dynamo at the first optimizer,
scikit-learn for the digits, wandb). --calls prints each timed call's count
and seconds, with the set-up and wandb start split further (training data,
optimizers, evaluator prepare; import wandb, wandb.init). --repeat N runs the
recipe N times and reports the median shares (runs after the first find those
modules imported already).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTS = ("setup", "training", "samples", "evaluation", "logging", "checkpoints")
# Packages that take a second or more to import: which of them the run imported (--calls).
HEAVY_MODULES = ("torch._dynamo", "torch._inductor", "sympy", "sklearn", "scipy", "wandb", "pydantic", "opentelemetry",
                 "torchvision", "matplotlib", "torch_fidelity", "torchmetrics", "pandas", "triton")
LOGGER_METHODS = ("log_config", "log_scalars", "log_images", "log_metrics", "log_event", "finish")


class Timers:
    """Exclusive time per part: a call's time minus that of the wrapped calls inside it."""

    def __init__(self):
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])  # name -> [calls, exclusive seconds]
        self._stack: list[list[float]] = []  # per open call: [time spent in nested wrapped calls]

    def wrap(self, part: str, fn, name: str | None = None):
        name = name or getattr(fn, "__qualname__", part)

        def timed(*args, **kwargs):
            self._stack.append([0.0])
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - t0
                nested = self._stack.pop()[0]
                self.total[part] += elapsed - nested
                self.calls[name][0] += 1
                self.calls[name][1] += elapsed - nested
                if self._stack:
                    self._stack[-1][0] += elapsed

        return timed


class TimedLogger:
    """The trainer's logger, every call timed as logging."""

    def __init__(self, inner, timers: Timers):
        for name in LOGGER_METHODS:
            setattr(self, name, timers.wrap("logging", getattr(inner, name), f"loggers.{name}"))


def timed_trainer_class(timers: Timers, patched: list):
    """The Trainer with its parts' calls timed; ``patched`` collects (object, name, original) to put back."""
    import gankit.loggers.factory as factory
    import gankit.loggers.wandb_logger as wandb_logger
    import gankit.training.assemble as assemble
    import gankit.training.reporter as reporter
    import gankit.training.trainer as trainer
    from gankit.eval.evaluator import Evaluator
    from gankit.training.players import Players

    def patch(obj, name, part, label):
        if hasattr(obj, name):
            original = getattr(obj, name)
            patched.append((obj, name, original))
            setattr(obj, name, timers.wrap(part, original, label))

    make_loggers, progress_cls = reporter.make_loggers, reporter.Progress

    class TimedProgress(progress_cls):  # the console progress is logging too
        pass

    for name in ("update", "show", "message", "close"):
        setattr(TimedProgress, name, timers.wrap("logging", getattr(progress_cls, name), f"Progress.{name}"))
    patched += [(reporter, "Progress", progress_cls), (reporter, "make_loggers", make_loggers)]
    reporter.Progress = TimedProgress
    reporter.make_loggers = timers.wrap("logging", lambda *a, **k: TimedLogger(make_loggers(*a, **k), timers),
                                        "make_loggers")
    patch(trainer, "assemble", "setup", "setup")
    patch(trainer.Trainer, "save_samples", "samples", "save_samples")
    patch(trainer.Trainer, "save_checkpoint", "checkpoints", "save_checkpoint")
    patch(trainer.Trainer, "evaluate", "evaluation", "evaluate")
    patch(trainer.Trainer, "_log", "logging", "Trainer._log")
    # Inside the parts above, for --calls only (each counts in its enclosing part).
    patch(assemble, "_training_data", "setup", "setup: training data")
    patch(Players, "build", "setup", "setup: players")
    patch(Evaluator, "prepare", "setup", "setup: evaluator prepare")
    patch(factory, "import_wandb", "logging", "make_loggers: import wandb")
    patch(wandb_logger, "start_wandb", "logging", "make_loggers: wandb.init")
    return trainer.Trainer


def run_once(recipe_path: Path, overrides: list[str], out_dir: str):
    """(seconds per part, wall seconds, the trainer, the timers) of one run of the recipe."""
    from gankit.recipe import load_recipe

    recipe = load_recipe(recipe_path, [*overrides, f"out_dir={out_dir}"])
    timers = Timers()
    patched: list = []
    before = set(sys.modules)
    try:
        trainer = timed_trainer_class(timers, patched)(recipe, source=str(recipe_path), overrides=overrides)
        t0 = time.perf_counter()
        trainer.run()
        wall = time.perf_counter() - t0
    finally:
        for obj, name, original in reversed(patched):
            setattr(obj, name, original)
    parts = {p: timers.total.get(p, 0.0) for p in PARTS if p != "training"}
    parts["training"] = wall - sum(parts.values())
    timers.imported = [m for m in HEAVY_MODULES if m in set(sys.modules) - before]
    return parts, wall, trainer, timers


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", nargs="?", type=Path, default=REPO / "recipes" / "quickstart.yaml")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--calls", action="store_true", help="also print each timed call's count and seconds (last run)")
    args = p.parse_args()
    from gankit.loggers.factory import requested_mode

    shares: dict[str, list[float]] = {part: [] for part in PARTS}
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            parts, wall, trainer, timers = run_once(args.recipe, args.overrides, tmp)
            walls.append(wall)
            for part in PARTS:
                shares[part].append(parts[part] / wall)
            print(f"run {i + 1}: {wall:.1f}s  " + "  ".join(f"{k} {parts[k]:.2f}s" for k in PARTS), flush=True)
    r = trainer.recipe
    print(f"\n{args.recipe.name} {' '.join(args.overrides)}: {trainer.step} steps, device {trainer.device}, "
          f"eval {r.eval.metrics or 'none'}, wandb {requested_mode(r.log.wandb.mode)}, "
          f"progress {r.log.progress}; median wall {statistics.median(walls):.1f}s over {args.repeat} run(s)")
    if args.calls:
        print(f"{'call (last run)':<28} {'calls':>6} {'seconds':>8}")
        for name, (n, seconds) in sorted(timers.calls.items(), key=lambda kv: -kv[1][1]):
            print(f"{name:<28} {n:>6} {seconds:>8.3f}")
        print(f"slow imports the run paid for: {', '.join(timers.imported) or 'none'}")
    print(f"{'part':<12} {'share':>7}")
    for part in PARTS:
        print(f"{part:<12} {statistics.median(shares[part]):>7.1%}")
    others = [1 - s for s in shares["training"]]
    print(f"everything but training: {statistics.median(others):.1%}  (target <= 10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
