"""How a step's batch is split: over torchrun's processes, then into ``train.accumulate`` rounds.

    per_process, per_round = split_batch(recipe.data.batch_size, world_size, recipe.train.accumulate)

``data.batch_size`` is the step's whole batch, as the official ``--batch``
of StyleGAN2-ADA and R3GAN: the same recipe trains on the same batch on one
GPU (with ``train.accumulate`` rounds when it does not fit) or on eight.
"""

from __future__ import annotations

from gankit.core.errors import GankitError


def split_batch(batch_size: int, processes: int, accumulate: int) -> tuple[int, int]:
    """(images per process, images per round); a batch that does not split evenly is a GankitError."""
    if batch_size % (processes * accumulate):
        parts = []
        if processes > 1:
            parts.append(f"{processes} processes")
        if accumulate > 1:
            parts.append(f"train.accumulate: {accumulate} rounds")
        fits = [b for b in range(processes * accumulate, 2 * batch_size + 1, processes * accumulate)]
        near = min(fits, key=lambda b: abs(b - batch_size)) if fits else processes * accumulate
        raise GankitError(f"data.batch_size: {batch_size} images do not split evenly into "
                          f"{' × '.join(parts)}; use a multiple of {processes * accumulate} (e.g. {near})")
    per_process = batch_size // processes
    return per_process, per_process // accumulate


def train_problems(recipe, origin) -> list[str]:
    """The step settings that cannot go together."""
    t, problems = recipe.train, []
    if t.order == "g_first" and t.g_step == "reuse":
        problems.append(f"train.order: g_first{origin('train.order')} runs G's update before D's, so G has no D "
                        "update's fakes to reuse; set train.g_step: fresh (as StyleGAN2-ADA)")
    try:
        split_batch(recipe.data.batch_size, 1, t.accumulate)
    except GankitError as exc:
        problems.append(f"{exc}{origin('train.accumulate') or origin('data.batch_size')}")
    return problems
