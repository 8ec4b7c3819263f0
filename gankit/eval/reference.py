"""The reference side of an evaluation: the real images, once per run and once per machine.

The metrics keep their reference side between evaluations of a run (only
the generated side is reset), so a run's second evaluation makes no real
pass at all ("memory"). The first looks in the on-disk cache
(:mod:`gankit.eval.cache`), one entry per feature extractor (Inception for
FID, KID, PRDC; DINOv2 for FD-DINOv2): the real features (and their class
labels, for per-class metrics), from which KID, PRDC and plugin feature
metrics are rebuilt, and the metrics' own reference states (FID's sums),
loaded as they are ("cache"). Only the extractors without an entry pass the
real images ("computed"), in one pass over the images for all of them, and
store what they computed. Metrics that read the images themselves (SWD)
always take the real images from the dataset, once per run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from gankit.eval import images as img
from gankit.eval.errors import EvalError
from gankit.eval.rng import torch_generator
from gankit.eval.share import in_order, owned


@dataclass
class Reference:
    """The real images and their identity (dataset name, root, split, transform, number of images)."""

    dataset: Dataset
    identity: dict[str, Any]


def _state_key(metric) -> str:
    return json.dumps(metric.identity(), sort_keys=True, default=str)


class RealSide:
    """Loads, computes and caches the reference side of one engine's metrics."""

    def __init__(self, engine):
        self.engine = engine
        self.ready: str | None = None  # the cache keys of the reference the metrics hold
        self.info: dict[str, Any] = {}

    def key(self, ref: Reference, n_wanted: int, subsetting: bool, extractor: str) -> dict[str, Any]:
        cfg = self.engine.cfg
        key = {"reference": ref.identity, "quantisation": img.QUANTISATION, "num_real": n_wanted,
               "subset_seed": cfg.seed if subsetting else None}
        key.update(self.engine.extractors[extractor].identity())
        return key

    def ensure(self, ref: Reference, share) -> dict[str, Any]:
        """Give every metric its reference side; returns num_real, notes and per extractor its source and cache file."""
        engine, cfg = self.engine, self.engine.cfg
        n_total = len(ref.dataset)
        n_wanted = min(cfg.num_real, n_total)
        readers = [m for m in engine.metrics.values() if m.reads_real]
        by_extractor: dict[str, list] = {}
        for m in readers:
            if m.uses == "features":
                by_extractor.setdefault(engine.extractor_of(m), []).append(m)
        keys = {name: self.key(ref, n_wanted, n_wanted < n_total, name) for name in by_extractor}
        memo = repr(sorted((name, sorted(k.items())) for name, k in keys.items()))
        if self.ready == memo:
            return {**self.info, "sources": {name: {**s, "source": "memory"} for name, s in self.info["sources"].items()},
                    "notes": [], "memory": True}
        notes = []
        if n_wanted < cfg.num_real:
            notes.append(f"eval.num_real {cfg.num_real} is more than the reference set's {n_total} images; "
                         f"using all {n_total}")
        labels_needed = any(m.needs_labels for m in readers)
        sources: dict[str, dict[str, Any]] = {}
        pending, count, missed = list(readers), None, []
        for name, metrics in by_extractor.items():
            cached, note = engine.cache.load(keys[name])
            notes += [note] if note else []
            if cached is not None and labels_needed and cached.get("labels") is None:
                cached = None  # written before a per-class metric needed the labels: computed again, with them
            sources[name] = {"source": "computed", "cache_file": str(engine.cache.path(keys[name]))}
            if cached is None:
                missed.append(name)
                continue
            self._load(metrics, cached)
            pending = [m for m in pending if m not in metrics]
            sources[name]["source"], count = "cache", cached["features"].shape[0]
        if pending:
            count = self._pass(ref, n_total, n_wanted, pending, share, {n: keys[n] for n in missed}, notes,
                               labels_needed)
        self.ready = memo
        self.info = {"num_real": count, "sources": sources}
        return {**self.info, "notes": notes, "memory": False}

    def _load(self, metrics, cached) -> None:
        """Hand each metric its reference side from a cache entry: its stored state, else the features."""
        features, states, labels = cached["features"], cached.get("states", {}), cached.get("labels")
        batch_size = self.engine.cfg.batch_size
        for m in metrics:
            state = states.get(_state_key(m))
            if state is not None and not m.needs_labels:
                m.load_real_state(state)
                m.take_real_features(features)
                continue
            for lo in range(0, features.shape[0], batch_size):  # batch by batch, as a real pass feeds them
                chunk = features[lo:lo + batch_size]
                if m.needs_labels:
                    m.update(chunk, real=True, labels=labels[lo:lo + batch_size])
                else:
                    m.update(chunk, real=True)

    def _pass(self, ref, n_total, n_wanted, metrics, share, store: dict[str, dict], notes, labels: bool) -> int:
        """One pass over the real images (each process its share); returns how many were read."""
        engine, cfg = self.engine, self.engine.cfg
        order = img.subset(n_total, n_wanted, torch_generator(cfg.seed, "real_subset"))

        def outputs(batch, y):
            return {**engine.outputs(batch, metrics), **({"labels": y} if labels else {})}

        if share.size == 1:  # skipped (unreadable) images are replaced by the next ones in the order
            done = [(i, outputs(b, y)) for i, (b, y) in
                    enumerate(img.labelled_batches(ref.dataset, order, cfg.batch_size, limit=n_wanted))]
        else:  # each process its run of batches of the first n_wanted indices
            chunks = [order[lo:lo + cfg.batch_size] for lo in range(0, n_wanted, cfg.batch_size)]
            done = [(i, outputs(b, y)) for i in owned(len(chunks), share)
                    for b, y in img.labelled_batches(ref.dataset, chunks[i], cfg.batch_size)]
        parts = share.gather(done)
        if share.rank != 0:
            return 0
        ordered = in_order(parts)
        count = sum(next(iter(o.values())).shape[0] for o in ordered)
        if count == 0:
            raise EvalError(f"the reference set {ref.identity.get('dataset')} has no readable images")
        if labels and any(int(o["labels"].min()) < 0 for o in ordered):
            names = ", ".join(m.name for m in metrics if m.needs_labels)
            raise EvalError(f"{names} needs class labels, but the reference set {ref.identity.get('dataset')} has "
                            "none; use a labelled dataset (digits, mnist, cifar10, imagefolder with class folders)")
        for o in ordered:
            engine.feed(metrics, o, real=True)
        for name, key in store.items():
            features = torch.cat([o[f"{name}:features"] for o in ordered])
            states = {_state_key(m): s for m in metrics
                      if m.uses == "features" and engine.extractor_of(m) == name and (s := m.real_state()) is not None}
            y = torch.cat([o["labels"] for o in ordered]) if labels else None
            note = engine.cache.save(key, features, states, labels=y)
            notes += [note] if note else []
        return count
