"""The run directory's format: what a run writes, and how it is read back.

    <out_dir>/<name>/<run id>/
        recipe.yaml          the resolved recipe, with versions and overrides under `gankit:` (layout)
        metrics.jsonl        one JSON object per row: train, eval, event, end (metrics)
        samples/             fixed-noise grids, step_0000500.png, ...
        checkpoints/last.pt  the latest checkpoint; last.prev.pt the one before, best.pt the best
                             evaluation, step_XXXXXXX.pt the kept ones (checkpoint)
        plugins/             copies of the recipe's .py plugins (layout)

It is the ground floor of everything that touches runs: training writes
through it, the loggers append rows with it, ``gankit compare``, ``report``,
``sample``, ``eval`` and ``export`` read with it. So it imports neither
training, the loggers, the runs package nor the commands (``tests/test_layout.py``
checks it): a change of format is made here, once.

- :mod:`~gankit.rundir.checkpoint`: the checkpoint file (atomic, checksummed, ``weights_only``);
- :mod:`~gankit.rundir.metrics`: ``metrics.jsonl``, written and streamed;
- :mod:`~gankit.rundir.record`: a run directory read back (:class:`RunRecord`, :func:`load_run`);
- :mod:`~gankit.rundir.layout`: creating, locking and repairing a run directory, its recipe and plugins.
"""
