"""The work a run does between steps: sample grids, evaluations, checkpoints, kept checkpoints.

When each is due (``train.sample_every``, ``eval.every``,
``train.checkpoint_every``, ``train.keep_every``, and all at the end) is
:func:`due`'s to say. Sampling, evaluating and checkpointing use their own
random streams, so how often they run never changes the training.
"""

from __future__ import annotations

from pathlib import Path

from gankit.core.errors import GankitError
from gankit.core.version import __version__
from gankit.nn.conditional import num_classes
from gankit.recipe.load import resolved
from gankit.sampling import save_grid
from gankit.training import checkpoint as ckpt_io
from gankit.training import state
from gankit.training.nonfinite import bad_weights, weights_finite


def every(interval: int | None, step: int) -> bool:
    return bool(interval) and step % interval == 0


def save_samples(run, reporter) -> None:
    images = run.sampling.generate(run.players.sampler, run.fixed_z, run.fixed_labels, run.counters.step)
    path = run.run_dir / "samples" / f"step_{run.counters.step:07d}.png"
    classes = num_classes(run.players.G)
    nrow = len(run.fixed_labels) // classes if run.fixed_labels is not None else None
    try:
        save_grid(images, path, nrow=nrow)
    except OSError as exc:
        raise GankitError(f"cannot write samples '{path}': {exc.strerror or exc}") from None
    reporter.images(run.counters.step, {"samples": path})
    reporter.alerts(run.counters.step, run.monitor.at_samples(run.counters.step, images))


def evaluate(run, reporter) -> bool:
    """Measure the sampling generator (every rank its share); True when FID improved (best.pt is due)."""
    G, classes, step = run.players.sampler, num_classes(run.players.G), run.counters.step
    # A conditional G is evaluated over every class in turn (its default without labels).
    rows = run.evaluator.evaluate(lambda z: run.sampling.generate(G, z, step=step), G.nz, step,
                                  generator="ema" if run.players.ema is not None else "raw", share=run.world)
    for row in rows:
        row["batchnorm"] = run.sampling.batchnorm
        if classes is not None:
            row["classes"] = classes
    fid = next((row["value"] for row in rows if row.get("metric") == "fid"), None)
    improved = fid is not None and (run.counters.best_fid is None or fid < run.counters.best_fid)
    if run.world.is_main:
        reporter.evaluation(step, rows)
        if fid is not None:
            reporter.alerts(step, run.monitor.at_fid(step, fid, run.counters.best_fid))
    if improved:
        run.counters.best_fid = fid
    return run.world.broadcast(improved) if run.world.distributed else improved


def save_checkpoint(run, stop) -> Path:
    """``checkpoints/last.pt`` (the previous one kept as last.prev.pt); never from non-finite weights."""
    path = run.run_dir / "checkpoints" / "last.pt"
    G, D = run.players.G, run.players.D
    if not run.world.all(weights_finite(G, D)):  # every rank stops alike
        bad = bad_weights(generator=G, discriminator=D)
        stop(f"step {run.counters.step}, before saving a checkpoint: {', '.join(bad[:5])}"
             + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""),
             "lower the learning rates (optim.g.lr, optim.d.lr)", {"weights": bad[:50]})
    contents = checkpoint_contents(run)
    if run.world.is_main:
        ckpt_io.atomic_save(contents, path, keep_previous=True)
    run.last_saved_step = run.counters.step
    return path


def checkpoint_contents(run) -> dict:
    """What a checkpoint of the run holds now (every rank must call it: it gathers the ranks' random states)."""
    c = run.counters
    c.epoch, c.batch_in_epoch = run.feeder.epoch, run.feeder.batch_in_epoch
    return state.checkpoint(c, run.players, run.streams, run.world, run_id=run.run_id, recipe=resolved(run.recipe),
                            version=__version__, skipped_steps=run.nonfinite.skipped,
                            extra={**state.component_states(run.stepper),
                                   "sampling": run.sampling.state(run.players.sampler, c.step,
                                                                  "ema" if run.players.ema is not None else "raw")})


def due(run, final: bool) -> tuple[bool, bool, bool]:
    """(samples, evaluation, checkpoint) due at this step."""
    t, s = run.recipe.train, run.counters.step
    evaluation = run.evaluator is not None and (final or run.evaluator.due(s))
    return final or every(t.sample_every, s), evaluation, final or every(t.checkpoint_every, s) or every(t.keep_every, s)


def periodic(run, reporter, stop, final: bool) -> None:
    samples, evaluation, checkpoint = due(run, final)
    main = run.world.is_main
    if main and samples:
        save_samples(run, reporter)
    improved = evaluate(run, reporter) if evaluation else False
    if checkpoint or improved:
        path = save_checkpoint(run, stop)
        if main and improved:
            ckpt_io.copy_checkpoint(path, path.with_name("best.pt"))
        if main and every(run.recipe.train.keep_every, run.counters.step):
            ckpt_io.copy_checkpoint(path, path.with_name(f"step_{run.counters.step:07d}.pt"))
