"""One evaluation: reference images vs generated (or folder) images, every metric, with provenance.

Shared by the trainer's :class:`gankit.eval.evaluator.Evaluator` and
``gankit eval``. :meth:`Engine.prepare` (at run start) builds the metrics
from the recipe's ``eval.metrics``, locates the weights and builds the
extractors; :meth:`Engine.measure` then makes one pass per image through
each extractor (Inception serves FID, KID, PRDC and IS from the same pass;
DINOv2 every metric in its space), hands each metric the output it uses, and
returns one row per metric value, with its interval where it has one.

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
from gankit.eval.extractors import Extractor, build_extractor
from gankit.eval.metrics.base import Metric, check_finite
from gankit.eval.reference import RealSide, Reference  # noqa: F401 (Reference: re-exported)
from gankit.eval.rows import budget_name, interval_fields
from gankit.eval.share import OneProcess, Share, in_order, owned
from gankit.eval.rng import torch_generator
from gankit.eval.weights import IS_NEEDS_CLASSIFIER, WeightsFile


class Fakes:
    """The images to judge: uint8 batches (with their index) plus how to describe them in provenance."""

    num: int
    provenance: dict[str, Any]

    def batches(self, batch_size: int, share: Share) -> Iterator[tuple[int, Tensor]]:
        raise NotImplementedError

    def labels(self, index: int, n: int, batch_size: int) -> Tensor | None:
        """The classes of batch ``index`` (``n`` images), or None when the images have none."""
        return None


class GeneratedImages(Fakes):
    """``generate(z)`` on latents from evaluation's own seeded stream (the same z every evaluation).

    With ``classes`` (a class-conditional G) it calls ``generate(z, labels)``, image i of the evaluation
    getting class i mod classes: every class in turn, known to per-class metrics.
    """

    def __init__(self, generate: Callable[..., Tensor], nz: int, num: int, seed: int,
                 device: torch.device, generator_name: str = "raw", classes: int | None = None):
        self.generate, self.nz, self.num, self.seed, self.device = generate, nz, num, seed, device
        self.classes = classes
        self.provenance = {"generator": generator_name}

    def labels(self, index, n, batch_size):
        if self.classes is None:
            return None
        return torch.arange(index * batch_size, index * batch_size + n) % self.classes

    def batches(self, batch_size, share):
        g = torch_generator(self.seed, "latents")  # drawn on the CPU: the same z on every device
        count = -(-self.num // batch_size)
        mine = owned(count, share)
        for index in range(count):
            n = min(batch_size, self.num - index * batch_size)
            z = torch.randn(n, self.nz, generator=g)  # drawn for every batch: each rank's z are the one-process z
            if index not in mine:
                continue
            labels = self.labels(index, n, batch_size)
            with torch.no_grad():
                out = self.generate(z.to(self.device)) if labels is None else \
                    self.generate(z.to(self.device), labels.to(self.device))
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


# The weights Specs the extractors' ``needs_weights`` name, and the eval key that names a file for each.
WEIGHTS = {"inception": ("gankit.eval.weights", "inception_weights"),
           "dinov2": ("gankit.eval.weights_dinov2", "dinov2_weights")}


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
        self.extractors: dict[str, Extractor] = {}  # feature_extractors name -> extractor (one pass each)
        self.weights_files: dict[str, WeightsFile] = {}  # weights Spec key ("inception", "dinov2") -> file
        self.cache = ReferenceCache(cache_root(cfg.cache_dir))
        self.real = RealSide(self)
        self.prepared = False

    @property
    def weights(self) -> WeightsFile | None:
        """The Inception weights file (None when no metric reads Inception)."""
        return self.weights_files.get("inception")

    def extractor_of(self, m: Metric) -> str | None:
        """The feature_extractors entry whose output ``m`` reads (IS: Inception's logits; SWD: none)."""
        if m.uses == "logits":
            return "inception"
        if m.uses == "features":
            return m.extractor or self.cfg.feature_extractor
        return None

    def key_of(self, m: Metric) -> str:
        """Where ``m``'s input is in :meth:`outputs`: ``images``, ``<extractor>:features``, ``inception:logits``."""
        return "images" if m.uses == "images" else f"{self.extractor_of(m)}:{m.uses}"

    def uses(self, what: str) -> bool:
        return any(m.uses == what for m in self.metrics.values())

    def prepare(self, allow_download: bool = True, fallback: str | None = None,
                conditional: bool | None = None) -> list[str]:
        """Build metrics and extractors; locate the weights (refusing or skipping without them).

        ``fallback`` (e.g. ``"swd"``) is measured instead when skipping leaves no metric.
        ``conditional=False`` (an unconditional generator) refuses per-class metrics at once.
        """
        import importlib

        from gankit.eval.weights_lookup import locate

        notices: list[str] = []
        self.metrics = {name: self._build_metric(name, args) for name, args in metric_entries(self.cfg)}
        labelled = [name for name, m in self.metrics.items() if m.needs_labels]
        if labelled and conditional is False:
            raise EvalError(f"eval.metrics: {', '.join(labelled)} measures each class, but the generator is not "
                            "class-conditional; set generator.num_classes (and a labelled dataset) or remove it")
        reg = self.registry("feature_extractors")
        wanted: dict[str, list[str]] = {}  # extractor -> the metrics reading it
        for name, m in self.metrics.items():
            if (ex := self.extractor_of(m)) is not None:
                if ex not in reg:
                    where = "eval.feature_extractor" if ex == self.cfg.feature_extractor else \
                        f"metric '{name}' reads feature extractor '{ex}'"
                    raise EvalError(f"{where}: {reg.unknown_message(ex)}")
                wanted.setdefault(ex, []).append(name)
        skip: dict[str, str] = {}
        for ex, names in wanted.items():
            spec_key = getattr(reg.get(ex), "needs_weights", None)
            if spec_key is None or spec_key in self.weights_files:
                continue
            module, cfg_key = WEIGHTS[spec_key]
            spec = importlib.import_module(module).SPEC
            logits = [n for n in names if self.metrics[n].uses == "logits"]
            need = frozenset({"features", "logits"} if logits else {"features"})
            try:
                found, said = locate(spec, getattr(self.cfg, cfg_key), allow_download, self.log, need)
                self.weights_files[spec_key] = found
                self.extractors[ex] = build_extractor(reg, ex, self.device, self.channels, self.image_size, found)
                notices += said
                if logits and not found.has_classifier:  # the converted FID weights: no IS
                    skip.update({n: IS_NEEDS_CLASSIFIER for n in logits})
            except WeightsError as exc:
                self.weights_files.pop(spec_key, None)
                if self.cfg.on_missing_weights == "refuse":
                    raise type(exc)(f"evaluation ({', '.join(names)}) needs the {spec.title}: {exc}\n"
                                    "    or set eval.on_missing_weights: skip to train without them") from None
                skip.update({n: str(exc).splitlines()[0] for n in names})
        if skip and self.cfg.on_missing_weights == "refuse":  # IS without the classifier
            raise EvalError(f"evaluation ({', '.join(skip)}): {next(iter(skip.values()))}\n"
                            "    or set eval.on_missing_weights: skip to train without them")
        if skip:
            for name, why in skip.items():
                self.skipped[name] = why
                del self.metrics[name]
            measuring = f"measuring {', '.join(self.metrics)}" if self.metrics else "measuring nothing"
            if not self.metrics and fallback:
                self.metrics[fallback] = self._build_metric(fallback, {})
                measuring = f"measuring {fallback} instead (it needs no weights)"
            for why in dict.fromkeys(skip.values()):
                names = ", ".join(n for n, w in skip.items() if w == why)
                notices.append(f"eval: skipping {names}: {why}; {measuring}")
        for ex in {self.extractor_of(m) for m in self.metrics.values()} - {None} - set(self.extractors):
            found = self.weights_files.get(getattr(reg.get(ex), "needs_weights", None))
            self.extractors[ex] = build_extractor(reg, ex, self.device, self.channels, self.image_size, found)
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
        metric.name, metric.device = name, self.device
        return metric

    def outputs(self, batch: Tensor, metrics: list[Metric] | None = None) -> dict[str, Tensor]:
        """What ``metrics`` (default: all) read from one uint8 batch: one pass through each extractor needed."""
        metrics = list(self.metrics.values()) if metrics is None else metrics
        out: dict[str, Tensor] = {}
        if any(m.uses == "images" for m in metrics):
            out["images"] = batch
        for ex in dict.fromkeys(self.extractor_of(m) for m in metrics if m.uses != "images"):
            out.update({f"{ex}:{k}": v for k, v in self.extractors[ex].extract(batch).items()})
        return out

    def feed(self, metrics: list[Metric], outputs: dict[str, Tensor], real: bool) -> None:
        for m in metrics:
            if m.needs_labels:
                m.update(outputs[self.key_of(m)], real=real, labels=outputs.get("labels"))
            else:
                m.update(outputs[self.key_of(m)], real=real)

    # -- one evaluation -------------------------------------------------------------
    def measure(self, ref: Reference, fakes: Fakes, step: int | None, share: Share | None = None) -> list[dict]:
        """One row per metric value, each with its provenance (on the main process; [] on the others)."""
        if not self.prepared:
            raise RuntimeError("Engine.prepare() must run before measure()")
        share = share or OneProcess()
        if not self.metrics:
            return []
        metrics = list(self.metrics.values())
        labelled = [m.name for m in metrics if m.needs_labels]
        if labelled and fakes.labels(0, 1, 1) is None:
            raise EvalError(f"{', '.join(labelled)} needs the classes of the generated images: measure a "
                            "class-conditional generator (a run or checkpoint), not an image folder")
        started, passed = time.monotonic(), self._feature_seconds()
        real = self.real.ensure(ref, share)

        def outputs(index: int, batch: Tensor) -> dict[str, Tensor]:
            y = fakes.labels(index, batch.shape[0], self.cfg.batch_size) if labelled else None
            return {**self.outputs(batch), **({"labels": y} if y is not None else {})}

        mine = [(i, outputs(i, batch)) for i, batch in fakes.batches(self.cfg.batch_size, share)]
        parts = share.gather(mine) if share.size > 1 else [mine]
        rows: list[dict[str, Any]] = []
        if share.rank == 0:
            n_fake = 0
            for o in in_order(parts):
                n_fake += next(iter(o.values())).shape[0]
                self.feed(metrics, o, real=False)
            rows = self._rows(ref, fakes, step, real, n_fake, share)
        for m in metrics:
            m.reset_fake()
        elapsed = round(time.monotonic() - started, 3)
        feature = round(self._feature_seconds() - passed, 3)  # real images too when not cached
        for row in rows:
            row["eval_seconds"], row["feature_seconds"] = elapsed, feature
        return rows

    def _feature_seconds(self) -> float:
        """Seconds spent so far in this engine's extractors (this process)."""
        return sum(getattr(e, "seconds", 0.0) for e in self.extractors.values())

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
        full = real["num_real"] == ref.identity.get("num_images")  # the whole reference set: "_full"
        rows = []
        for name, metric in self.metrics.items():
            ex = self.extractor_of(metric)
            if ex is not None:
                extractor = self.extractors[ex].provenance()
                sources = real["sources"].get(ex)
                source = ({"reference_stats": sources["source"], "cache_file": sources["cache_file"]} if sources
                          else {"reference_stats": None, "cache_file": None})  # IS reads generated images only
            else:  # the images themselves: no extractor, no cached reference features
                extractor = {}
                source = {"reference_stats": "memory" if real["memory"] else "computed", "cache_file": None}
            extractor.update(metric.provenance())
            for value in metric.compute(self.cfg.seed):
                check_finite(value)
                details = dict(value.details)
                notes = real["notes"] + ([details.pop("note")] if "note" in details else [])
                budget = budget_name(value.metric, n_fake, real["num_real"] if metric.reads_real else None, full)
                rows.append({"metric": value.metric, "value": value.value, "std": value.std,
                             **interval_fields(value), "budget_name": budget,
                             "higher_is_better": metric.higher_is_better, **common,
                             **extractor, **source, **details, "notes": notes})
        return rows
