"""One evaluation: reference images vs generated (or folder) images, every metric, with provenance.

Shared by the trainer's :class:`gankit.eval.evaluator.Evaluator` and
``gankit eval``. :meth:`Engine.prepare` (at run start) locates the weights
and builds the extractors; :meth:`Engine.measure` then makes one pass per
image through each extractor (Inception serves FID, KID, PRDC and IS from
the same pass), reads reference features from the cache when it can, and
returns one row per metric value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

import gankit
from gankit.errors import GankitError
from gankit.eval import images as img
from gankit.eval import swd
from gankit.eval.cache import ReferenceCache, cache_root
from gankit.eval.errors import EvalError, WeightsError
from gankit.eval.features import Extractor, build_extractor, inception
from gankit.eval.metrics import Inputs, Metric, check_finite
from gankit.eval.rng import torch_generator
from gankit.eval.stats import FeatureStats
from gankit.eval.weights import WeightsFile, locate

SWD_PROVENANCE = {
    "feature_extractor": "laplacian_pyramid_patches", "weights_path": None, "weights_sha256": None,
    "weights_published": None, "input_resolution": None, "resize": "none (native resolution)", "antialias": None,
}


@dataclass
class Reference:
    """The real images and their identity (dataset name, root, split, transform, number of images)."""

    dataset: Dataset
    identity: dict[str, Any]


class Fakes:
    """The images to judge: uint8 batches plus how to describe them in provenance."""

    num: int
    provenance: dict[str, Any]

    def batches(self, batch_size: int) -> Iterator[Tensor]:
        raise NotImplementedError


class GeneratedImages(Fakes):
    """``generate(z)`` on latents from evaluation's own seeded stream (same z every evaluation)."""

    def __init__(self, generate: Callable[[Tensor], Tensor], nz: int, num: int, seed: int,
                 device: torch.device, generator_name: str = "raw"):
        self.generate, self.nz, self.num, self.seed, self.device = generate, nz, num, seed, device
        self.provenance = {"generator": generator_name}

    def batches(self, batch_size: int) -> Iterator[Tensor]:
        g = torch_generator(self.seed, "latents")  # drawn on the CPU: the same z on every device
        for lo in range(0, self.num, batch_size):
            n = min(batch_size, self.num - lo)
            z = torch.randn(n, self.nz, generator=g).to(self.device)
            with torch.no_grad():
                out = self.generate(z)
            if not isinstance(out, Tensor) or out.dim() != 4 or out.shape[0] != n:
                got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
                raise EvalError(f"generate(z) with z of shape {tuple(z.shape)} must return (N, C, H, W) images, "
                                f"got {got}")
            yield img.quantise(out.detach()).cpu()


class FolderImages(Fakes):
    def __init__(self, folder: img.ImageFolder, num: int | None, seed: int):
        self.folder = folder
        self.num = len(folder) if num is None else min(num, len(folder))
        self.order = img.subset(len(folder), self.num, torch_generator(seed, "fake_subset"))
        self.provenance = {"generator": None, "fake_folder": folder.identity()}

    def batches(self, batch_size: int) -> Iterator[Tensor]:
        return img.batches(self.folder, self.order, batch_size, limit=self.num)


class Engine:
    """Measures images against references with the metrics of one ``eval`` section."""

    def __init__(self, cfg, device: torch.device, channels: int = 3, image_size: int = 64,
                 log: Callable[[str], None] | None = None):
        self.cfg, self.device, self.channels, self.image_size, self.log = cfg, device, channels, image_size, log
        self.metrics: dict[str, Metric] = {}
        self.skipped: dict[str, str] = {}  # metric -> why
        self.extractor: Extractor | None = None  # features for FID/KID/PRDC
        self.inception: Extractor | None = None  # logits for IS (the same object when extractor is inception)
        self.weights: WeightsFile | None = None
        self.cache = ReferenceCache(cache_root(cfg.cache_dir))
        self._references: dict[str, dict[str, Any]] = {}  # in-memory reference data, per cache key
        self.prepared = False

    def _uses(self, what: str) -> bool:
        return any(m.uses == what for m in self.metrics.values())

    def prepare(self, allow_download: bool = True) -> list[str]:
        """Build metrics and extractors; locate the weights (refusing or skipping without them)."""
        from gankit.plugins import registry

        notices: list[str] = []
        reg = registry("metrics")
        self.metrics = {name: self._build_metric(reg, name) for name in dict.fromkeys(self.cfg.metrics)}
        needs_weights = [n for n, m in self.metrics.items()
                         if m.uses == "logits" or (m.uses == "features" and self.cfg.feature_extractor == "inception")]
        if needs_weights:
            try:
                self.weights, found = locate(self.cfg.inception_weights, allow_download, self.log)
                self.inception = inception(self.weights, self.device)  # fails here on an unusable file
                notices += found
            except WeightsError as exc:
                what = ", ".join(needs_weights)
                if self.cfg.on_missing_weights == "refuse":
                    raise type(exc)(f"evaluation ({what}) needs the Inception weights: {exc}") from None
                reason = str(exc).splitlines()[0]
                for name in needs_weights:
                    self.skipped[name] = reason
                    del self.metrics[name]
                left = ", ".join(self.metrics) or "nothing"
                notices.append(f"eval: skipping {what} (eval.on_missing_weights: skip): {reason}; measuring: {left}")
        if self._uses("features"):
            if self.cfg.feature_extractor == "inception":
                self.extractor = self.inception  # one pass gives FID/KID/PRDC features and IS logits
            else:
                self.extractor = build_extractor(self.cfg.feature_extractor, self.device, self.channels,
                                                 self.image_size, self.weights)
        if "kid" in self.metrics and self.cfg.num_fake < self.cfg.kid_subset_size:
            notices.append(f"eval: KID subsets will use {self.cfg.num_fake} images (eval.num_fake) instead of "
                           f"eval.kid_subset_size {self.cfg.kid_subset_size}")
        self.prepared = True
        return notices

    def _build_metric(self, reg, name: str) -> Metric:
        cls = reg.get(name)
        if not (isinstance(cls, type) and issubclass(cls, Metric)):
            raise GankitError(f"metric '{name}' ({reg.entry(name).describe()}) must be a subclass of "
                              "gankit.eval.metrics.Metric")
        return cls.from_config(self.cfg)

    def _stats(self, features: Tensor) -> FeatureStats:
        """float64 statistics on the evaluation device (a GPU makes the d x d algebra cheap)."""
        return FeatureStats(features.to(self.device))

    # -- reference side ------------------------------------------------------------
    def _reference_data(self, ref: Reference) -> tuple[dict[str, Any], str | None, list[str]]:
        """(real features and SWD patches, where the features came from now, notes of this call).

        Features come from the disk cache or one pass over the real images, and
        stay in memory for the run's later evaluations ("memory"); SWD patches
        are kept in memory only.
        """
        n_total = len(ref.dataset)
        n_wanted = min(self.cfg.num_real, n_total)
        subsetting = n_wanted < n_total
        key = {"reference": ref.identity, "quantisation": img.QUANTISATION, "num_real": n_wanted,
               "subset_seed": self.cfg.seed if subsetting else None}
        if self.extractor is not None:
            key.update(self.extractor.identity())
        memo_key = repr(sorted(key.items()))
        notes = []
        if n_wanted < self.cfg.num_real:
            notes.append(f"eval.num_real {self.cfg.num_real} is more than the reference set's "
                         f"{n_total} images; using all {n_total}")
        data = self._references.setdefault(memo_key, {"stats": None, "patches": None, "cache_file": None})
        source = "memory" if data["stats"] is not None else None
        need_features = self.extractor is not None and data["stats"] is None
        need_patches = self._uses("images") and data["patches"] is None
        if need_features:
            features, note = self.cache.load(key)
            data["cache_file"] = str(self.cache.path(key))
            notes += [note] if note else []
            if features is not None:
                data["stats"], source, need_features = self._stats(features), "cache", False
        if need_features or need_patches:
            order = img.subset(n_total, n_wanted, torch_generator(self.cfg.seed, "real_subset"))
            patches = swd.Descriptors(n_wanted, torch_generator(self.cfg.seed, "swd_real")) if need_patches else None
            feats, count = [], 0
            for batch in img.batches(ref.dataset, order, self.cfg.batch_size, limit=n_wanted):
                count += batch.shape[0]
                if need_features:
                    feats.append(self.extractor.extract(batch)["features"])
                if patches is not None:
                    patches.add(batch)
            if count == 0:
                raise EvalError(f"the reference set {ref.identity.get('dataset')} has no readable images")
            if need_features:
                features = torch.cat(feats)
                data["stats"], source = self._stats(features), "computed"
                note = self.cache.save(key, features)
                notes += [note] if note else []
            if patches is not None:
                data["patches"], data["patch_size"] = patches.finish(), patches.size
            data["num_real"] = count
        if data["stats"] is not None:
            data["num_real"] = data["stats"].n
        return data, source, notes

    # -- one evaluation -------------------------------------------------------------
    def measure(self, ref: Reference, fakes: Fakes, step: int | None) -> list[dict[str, Any]]:
        """One row per metric value, each with its provenance."""
        if not self.prepared:
            raise RuntimeError("Engine.prepare() must run before measure()")
        if not self.metrics:
            return []
        started = time.monotonic()
        real, real_source, real_notes = self._reference_data(ref)
        inputs = Inputs(seed=self.cfg.seed, real=real["stats"], real_patches=real["patches"],
                        patch_size=real.get("patch_size"))
        fake_feats, fake_logits = [], []
        patches = None
        if self._uses("images"):
            patches = swd.Descriptors(fakes.num, torch_generator(self.cfg.seed, "swd_fake"))
        n_fake = 0
        for batch in fakes.batches(self.cfg.batch_size):
            n_fake += batch.shape[0]
            if self.extractor is not None:
                out = self.extractor.extract(batch)
                fake_feats.append(out["features"])
                if self.inception is self.extractor and self._uses("logits"):
                    fake_logits.append(out["logits"])
            if self.inception is not None and self.inception is not self.extractor:
                fake_logits.append(self.inception.extract(batch)["logits"])
            if patches is not None:
                patches.add(batch)
        if fake_feats:
            inputs.fake = self._stats(torch.cat(fake_feats))
        if fake_logits:
            inputs.fake_logits = torch.cat(fake_logits).to(self.device)
        if patches is not None:
            if patches.size != inputs.patch_size:
                raise EvalError(f"swd: generated images are {patches.size}px, reference images "
                                f"{inputs.patch_size}px; SWD compares images of one size")
            inputs.fake_patches = patches.finish()

        common = {
            "step": step,
            "num_real": real.get("num_real"),
            "num_fake": n_fake,
            "reference": ref.identity,
            **fakes.provenance,
            "quantisation": img.QUANTISATION,
            "seed": self.cfg.seed,
            "batch_size": self.cfg.batch_size,  # matters for generators whose BatchNorm uses batch statistics
            "gankit_version": gankit.__version__,
        }
        rows = []
        for name, metric in self.metrics.items():
            if metric.uses == "features":
                extractor = self.extractor.provenance()
                source = {"reference_stats": real_source, "cache_file": real["cache_file"]}
            elif metric.uses == "logits":
                extractor = self.inception.provenance()
                source = {"reference_stats": None, "cache_file": None}  # IS reads generated images only
            else:
                extractor = dict(SWD_PROVENANCE, input_resolution=inputs.patch_size)
                source = {"reference_stats": "computed", "cache_file": None}
            for value in metric.compute(inputs):
                check_finite(value)
                notes = real_notes + ([value.details.pop("note")] if "note" in value.details else [])
                rows.append({"metric": value.metric, "value": value.value, "std": value.std, **common,
                             **extractor, **source, **value.details, "notes": notes})
        elapsed = round(time.monotonic() - started, 3)
        for row in rows:
            row["eval_seconds"] = elapsed
        return rows
