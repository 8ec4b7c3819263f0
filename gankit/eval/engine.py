"""One evaluation: reference images vs generated (or folder) images, every metric, with provenance.

Shared by the trainer's :class:`gankit.eval.evaluator.Evaluator` and
``gankit eval``. :meth:`Engine.prepare` (at run start) builds the metrics
from the recipe's ``eval.metrics``, locates the weights and builds the
extractors; :meth:`Engine.measure` then makes one pass per image through
each extractor (Inception serves FID, KID, PRDC and IS from the same pass),
hands each metric the output it uses, and returns one row per metric value.

Under torchrun every process measures its share (:class:`Share`): the
generated batches, and the reference batches when they are not cached, are
dealt out in contiguous runs of batches; each process extracts its own and
the main process receives them all in the one-process order, so the result
equals a one-process evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from gankit.core.version import __version__
from gankit.eval import images as img
from gankit.eval.cache import ReferenceCache, cache_root
from gankit.eval.errors import EvalError, WeightsError
from gankit.eval.extractors import Extractor, build_extractor, inception
from gankit.eval.metrics.base import Metric, check_finite
from gankit.eval.reference import RealSide, Reference  # noqa: F401 (Reference: re-exported)
from gankit.eval.share import OneProcess, Share, in_order, owned
from gankit.eval.rng import torch_generator
from gankit.eval.weights import IS_NEEDS_CLASSIFIER, WeightsFile, locate


class Fakes:
    """The images to judge: uint8 batches (with their index) plus how to describe them in provenance."""

    num: int
    provenance: dict[str, Any]

    def batches(self, batch_size: int, share: Share) -> Iterator[tuple[int, Tensor]]:
        raise NotImplementedError


class GeneratedImages(Fakes):
    """``generate(z)`` on latents from evaluation's own seeded stream (the same z every evaluation)."""

    def __init__(self, generate: Callable[[Tensor], Tensor], nz: int, num: int, seed: int,
                 device: torch.device, generator_name: str = "raw"):
        self.generate, self.nz, self.num, self.seed, self.device = generate, nz, num, seed, device
        self.provenance = {"generator": generator_name}

    def batches(self, batch_size, share):
        g = torch_generator(self.seed, "latents")  # drawn on the CPU: the same z on every device
        count = -(-self.num // batch_size)
        mine = owned(count, share)
        for index in range(count):
            n = min(batch_size, self.num - index * batch_size)
            z = torch.randn(n, self.nz, generator=g)  # drawn for every batch: each rank's z are the one-process z
            if index not in mine:
                continue
            with torch.no_grad():
                out = self.generate(z.to(self.device))
            if not isinstance(out, Tensor) or out.dim() != 4 or out.shape[0] != n:
                got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
                raise EvalError(f"generate(z) with z of shape {tuple(z.shape)} must return (N, C, H, W) images, "
                                f"got {got}")
            yield index, img.quantise(out.detach()).cpu()


class FolderImages(Fakes):
    def __init__(self, folder: img.ImageFolder, num: int | None, seed: int):
        self.folder = folder
        self.num = len(folder) if num is None else min(num, len(folder))
        self.order = img.subset(len(folder), self.num, torch_generator(seed, "fake_subset"))
        self.provenance = {"generator": None, "fake_folder": folder.identity()}

    def batches(self, batch_size, share):
        for index, batch in enumerate(img.batches(self.folder, self.order, batch_size, limit=self.num)):
            if share.rank == 0:  # files are read by one process
                yield index, batch


def metric_entries(cfg) -> list[tuple[str, dict[str, Any]]]:
    """``eval.metrics`` as (name, arguments): a bare name or ``{name: ..., arg: ...}``."""
    entries = []
    for entry in cfg.metrics:
        if isinstance(entry, str):
            entries.append((entry, {}))
        else:
            entries.append((entry.name, dict(entry.args)))
    return entries


class Engine:
    """Measures images against references with the metrics of one ``eval`` section.

    ``registry(kind)`` gives the registries the metrics and extractors come
    from (the plugin host's); evaluation never looks up a global host.
    """

    def __init__(self, cfg, device: torch.device, channels: int = 3, image_size: int = 64,
                 log: Callable[[str], None] | None = None, registry: Callable | None = None):
        if registry is None:
            raise TypeError("Engine needs the registries it builds metrics from (registry=host.registry)")
        self.cfg, self.device, self.channels, self.image_size, self.log = cfg, device, channels, image_size, log
        self.registry = registry
        self.metrics: dict[str, Metric] = {}
        self.skipped: dict[str, str] = {}  # metric -> why
        self.extractor: Extractor | None = None  # features for FID/KID/PRDC
        self.inception: Extractor | None = None  # logits for IS (the same object when extractor is inception)
        self.weights: WeightsFile | None = None
        self.cache = ReferenceCache(cache_root(cfg.cache_dir))
        self.real = RealSide(self)
        self.prepared = False

    def uses(self, what: str) -> bool:
        return any(m.uses == what for m in self.metrics.values())

    def prepare(self, allow_download: bool = True, fallback: str | None = None) -> list[str]:
        """Build metrics and extractors; locate the weights (refusing or skipping without them).

        ``fallback`` (e.g. ``"swd"``) is measured instead when skipping leaves no metric.
        """
        notices: list[str] = []
        self.metrics = {name: self._build_metric(name, args) for name, args in metric_entries(self.cfg)}
        needs_weights = [n for n, m in self.metrics.items()
                         if m.uses == "logits" or (m.uses == "features" and self.cfg.feature_extractor == "inception")]
        skip, reason = [], ""
        if needs_weights:
            logits = [n for n in needs_weights if self.metrics[n].uses == "logits"]
            try:
                self.weights, found = locate(self.cfg.inception_weights, allow_download, self.log, bool(logits))
                self.inception = inception(self.weights, self.device)  # fails here on an unusable file
                notices += found
                if not self.weights.has_classifier and logits:  # the converted FID weights: no IS
                    skip, reason = logits, IS_NEEDS_CLASSIFIER
            except WeightsError as exc:
                skip, reason = needs_weights, str(exc).splitlines()[0]
                if self.cfg.on_missing_weights == "refuse":
                    raise type(exc)(f"evaluation ({', '.join(skip)}) needs the Inception weights: {exc}\n"
                                    "    or set eval.on_missing_weights: skip to train without them") from None
            if skip and self.cfg.on_missing_weights == "refuse":
                raise EvalError(f"evaluation ({', '.join(skip)}): {reason}\n"
                                "    or set eval.on_missing_weights: skip to train without them")
        if skip:
            for name in skip:
                self.skipped[name] = reason
                del self.metrics[name]
            measuring = f"measuring {', '.join(self.metrics)}" if self.metrics else "measuring nothing"
            if not self.metrics and fallback:
                self.metrics[fallback] = self._build_metric(fallback, {})
                measuring = f"measuring {fallback} instead (it needs no weights)"
            notices.append(f"eval: skipping {', '.join(skip)}: {reason}; {measuring}")
        if self.uses("features"):
            if self.cfg.feature_extractor == "inception":
                self.extractor = self.inception  # one pass gives FID/KID/PRDC features and IS logits
            else:
                self.extractor = build_extractor(self.registry("feature_extractors"), self.cfg.feature_extractor,
                                                 self.device, self.channels, self.image_size, self.weights)
        for name, m in self.metrics.items():
            size = getattr(m, "subset_size", None)
            if isinstance(size, int) and self.cfg.num_fake < size:
                notices.append(f"eval: {name.upper()} subsets will use {self.cfg.num_fake} images (eval.num_fake) "
                               f"instead of its subset_size {size}")
        self.prepared = True
        return notices

    def _build_metric(self, name: str, args: dict[str, Any]) -> Metric:
        reg = self.registry("metrics")
        cls = reg.get(name)
        if not (isinstance(cls, type) and issubclass(cls, Metric)):
            raise EvalError(f"metric '{name}' ({reg.entry(name).describe()}) must be a subclass of "
                            "gankit.eval.metrics.Metric")
        legacy = {arg: getattr(self.cfg, key) for arg, key in cls.recipe_defaults.items() if arg not in args}
        metric = reg.build_from_recipe(name, None, **legacy, **args)
        metric.name = name
        return metric

    def outputs(self, batch: Tensor, metrics: list[Metric] | None = None) -> dict[str, Tensor]:
        """What ``metrics`` (default: all) read from one uint8 batch: one pass through each extractor needed."""
        needs = {m.uses for m in (self.metrics.values() if metrics is None else metrics)}
        out: dict[str, Tensor] = {}
        if "images" in needs:
            out["images"] = batch
        if self.extractor is not None and ("features" in needs or ("logits" in needs and self.inception is self.extractor)):
            out.update(self.extractor.extract(batch))
        if self.inception is not None and self.inception is not self.extractor and "logits" in needs:
            out["logits"] = self.inception.extract(batch)["logits"]
        return out

    def feed(self, metrics: list[Metric], outputs: dict[str, Tensor], real: bool) -> None:
        for m in metrics:
            m.update(outputs[m.uses], real=real)

    # -- one evaluation -------------------------------------------------------------
    def measure(self, ref: Reference, fakes: Fakes, step: int | None, share: Share | None = None) -> list[dict]:
        """One row per metric value, each with its provenance (on the main process; [] on the others)."""
        if not self.prepared:
            raise RuntimeError("Engine.prepare() must run before measure()")
        share = share or OneProcess()
        if not self.metrics:
            return []
        started = time.monotonic()
        real = self.real.ensure(ref, share)
        metrics = list(self.metrics.values())
        mine = [(i, self.outputs(batch)) for i, batch in fakes.batches(self.cfg.batch_size, share)]
        parts = share.gather(mine) if share.size > 1 else [mine]
        rows: list[dict[str, Any]] = []
        if share.rank == 0:
            n_fake = 0
            for outputs in in_order(parts):
                n_fake += next(iter(outputs.values())).shape[0]
                self.feed(metrics, outputs, real=False)
            rows = self._rows(ref, fakes, step, real, n_fake, share)
        for m in metrics:
            m.reset_fake()
        elapsed = round(time.monotonic() - started, 3)
        for row in rows:
            row["eval_seconds"] = elapsed
        return rows

    def _rows(self, ref: Reference, fakes: Fakes, step, real: dict[str, Any], n_fake: int, share: Share):
        common = {
            "step": step,
            "num_real": real["num_real"],
            "num_fake": n_fake,
            "reference": ref.identity,
            **fakes.provenance,
            "quantisation": img.QUANTISATION,
            "seed": self.cfg.seed,
            "batch_size": self.cfg.batch_size,  # matters for generators whose BatchNorm uses batch statistics
            "world_size": share.size,  # processes that shared the evaluation (torchrun)
            "gankit_version": __version__,
        }
        rows = []
        for name, metric in self.metrics.items():
            if metric.uses == "features":
                extractor = self.extractor.provenance()
                source = {"reference_stats": real["source"], "cache_file": real["cache_file"]}
            elif metric.uses == "logits":
                extractor = self.inception.provenance()
                source = {"reference_stats": None, "cache_file": None}  # IS reads generated images only
            else:  # the images themselves: no extractor, no cached reference features
                extractor = {}
                source = {"reference_stats": "computed" if real["source"] != "memory" else "memory",
                          "cache_file": None}
            extractor.update(metric.provenance())
            for value in metric.compute(self.cfg.seed):
                check_finite(value)
                details = dict(value.details)
                notes = real["notes"] + ([details.pop("note")] if "note" in details else [])
                rows.append({"metric": value.metric, "value": value.value, "std": value.std,
                             "higher_is_better": metric.higher_is_better, **common, **extractor, **source, **details,
                             "notes": notes})
        return rows
