"""Training: a recipe's parts assembled, the GAN step, the loop, and everything a checkpoint holds.

Read it in this order, as stylegan2-ada's ``training_loop.py`` reads:

    trainer.py     the loop: set up, step after step, what is due (grid, evaluation, checkpoints), the end;
                   Ctrl-C/SIGTERM and the failures a user can act on
    assemble.py    the parts of one run (a Job), built once in the order that keeps a seed's weights
    step.py        one GAN iteration: D update(s), then G's (the tutorial's step, and what recipes add)
    state.py       the run state: everything resumable, in one place; what may change on resume

and, each with one job the loop calls on:

    feeding.py     real batches in the resumable order, d_steps to a step
    players.py     G, D, their optimizers, scalers, EMA, and the schedules that set their hyperparameters
    ema.py         G's moving average
    nonfinite.py   the guard that stops or skips an update with NaN/inf, naming the culprits
    health.py      alerts that a run is failing; out-of-memory and disk failures as clear errors
    reporter.py    what the record and the console are told, and the progress display
    speed.py       precision, memory layout, compilation, deterministic kernels
    distributed.py torchrun: the process group, DDP wrappers, decisions all ranks share

Where the cuts fall, and why. A file is cut where a reader's question
changes: "what happens each step" (trainer, step), "what is this run made
of" (assemble), "what does a checkpoint hold" (state). Work that only the
loop calls (sampling the grid, evaluating, writing checkpoints, stopping on a
signal) lives in the loop, where its timing is decided, instead of in
modules of its own that every reader had to open. Everything a checkpoint
holds is written and read by one object (:class:`~gankit.training.state.RunState`);
the parts with state declare it, so a new counter is an edit of its part
only. What a run directory is on disk (checkpoint files, ``metrics.jsonl``,
the run's folders and lock) is :mod:`gankit.rundir`, below training, so that
the loggers and ``gankit compare`` read runs without importing the trainer;
building components from a recipe and the trial build of ``gankit
validate`` are :mod:`gankit.recipe`'s. The guard and the alerts stay apart
(nonfinite, health): one acts on every update, the other watches trends.
"""
