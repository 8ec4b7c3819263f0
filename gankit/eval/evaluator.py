"""The trainer's view of evaluation: prepare at run start, then evaluate every ``eval.every`` steps.

    evaluator = Evaluator(recipe, device, lambda: build_dataset(recipe), registry=host.registry)
    notices = evaluator.prepare()        # before training: weights found, or refuse / skip
    if evaluator.due(step):
        rows = evaluator.evaluate(lambda z: generate(G, z), G.nz, step)

Evaluation never changes the training trajectory: its latents, real subset
and random projections come from its own seeded generators, and the global
RNGs are fenced (:func:`gankit.eval.rng.isolated_global_rng`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset

from gankit.data.identity import dataset_identity
from gankit.eval.engine import Engine, GeneratedImages, Reference
from gankit.eval.rng import isolated_global_rng


class Evaluator:
    """FID/IS/KID/PRDC/SWD of a run's generator against the recipe's own dataset."""

    def __init__(self, recipe, device: torch.device, make_dataset: Callable[[], Dataset],
                 log: Callable[[str], None] | None = None, *, registry: Callable):
        self.recipe = recipe
        self.cfg = recipe.eval
        self.device = torch.device(device)
        self.make_dataset = make_dataset
        self.engine = Engine(self.cfg, self.device, recipe.data.channels, recipe.data.image_size, log, registry)
        self._reference: Reference | None = None

    @property
    def metrics(self) -> list[str]:
        """The metrics that will be measured (after any skipped for missing weights)."""
        return list(self.engine.metrics)

    @property
    def skipped(self) -> dict[str, str]:
        """Metric -> why it is not measured."""
        return dict(self.engine.skipped)

    def prepare(self, allow_download: bool = True, fallback: str | None = "swd",
                conditional: bool | None = None) -> list[str]:
        """At run start: locate the weights and build the extractors.

        Raises :class:`gankit.eval.errors.WeightsError` (a GankitError) when
        the weights are missing or unusable and ``eval.on_missing_weights`` is
        ``refuse``. Otherwise the metrics that cannot be measured are skipped
        (:attr:`skipped` says why), and when none is left it measures
        ``fallback`` (SWD needs no weights), so that every run measures something. Returns
        notices to print and log (what was skipped and why, a download, a weights
        file of unknown origin, ...).
        """
        return self.engine.prepare(allow_download, fallback, conditional)

    def due(self, step: int) -> bool:
        """Whether ``step`` is an ``eval.every`` step (the final evaluation is the trainer's call)."""
        every = self.cfg.every
        return bool(every) and step > 0 and step % every == 0

    def reference(self) -> Reference:
        if self._reference is None:
            dataset = self.make_dataset()
            self._reference = Reference(dataset, {**dataset_identity(self.recipe.data), "num_images": len(dataset)})
        return self._reference

    def evaluate(self, generate: Callable[..., torch.Tensor], nz: int, step: int,
                 generator: str = "raw", share=None, classes: int | None = None) -> list[dict[str, Any]]:
        """One row per metric value: ``{"metric", "value", "std", ...provenance}``.

        ``generate(z)`` maps latents ``(n, nz)`` on this evaluator's device to
        images in [-1, 1] (any device); ``generator`` names which weights
        ("raw" or "ema"). With ``classes`` (a class-conditional G) it is
        called as ``generate(z, labels)``, every class in turn. Under torchrun every process calls this with its
        ``share`` (:class:`gankit.eval.share.Share`); the rows come back on
        the main process, an empty list on the others.
        """
        if not self.engine.prepared:
            self.prepare()
        with isolated_global_rng(self.cfg.seed):
            fakes = GeneratedImages(generate, nz, self.cfg.num_fake, self.cfg.seed, self.device, generator, classes)
            return self.engine.measure(self.reference(), fakes, step, share)
