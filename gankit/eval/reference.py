"""The reference side of an evaluation: the real images, once per run and once per machine.

The metrics keep their reference side between evaluations of a run (only
the generated side is reset), so a run's second evaluation makes no real
pass at all ("memory"). The first looks in the on-disk cache
(:mod:`gankit.eval.cache`): the real features, from which KID, PRDC and
plugin feature metrics are rebuilt, and the metrics' own reference states
(FID's sums), loaded as they are ("cache"). Only without either does it pass
the real images through the extractor ("computed"), and then stores them.
Metrics that read the images themselves (SWD) always take the real images
from the dataset, once per run.
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
        self.ready: str | None = None  # the cache key of the reference the metrics hold
        self.info: dict[str, Any] = {}

    def key(self, ref: Reference, n_wanted: int, subsetting: bool) -> dict[str, Any]:
        cfg = self.engine.cfg
        key = {"reference": ref.identity, "quantisation": img.QUANTISATION, "num_real": n_wanted,
               "subset_seed": cfg.seed if subsetting else None}
        if self.engine.extractor is not None:
            key.update(self.engine.extractor.identity())
        return key

    def ensure(self, ref: Reference, share) -> dict[str, Any]:
        """Give every metric its reference side; returns num_real, source, cache_file and notes."""
        engine, cfg = self.engine, self.engine.cfg
        n_total = len(ref.dataset)
        n_wanted = min(cfg.num_real, n_total)
        key = self.key(ref, n_wanted, n_wanted < n_total)
        memo = repr(sorted(key.items()))
        if self.ready == memo:
            return {**self.info, "source": "memory", "notes": []}
        notes = []
        if n_wanted < cfg.num_real:
            notes.append(f"eval.num_real {cfg.num_real} is more than the reference set's {n_total} images; "
                         f"using all {n_total}")
        readers = [m for m in engine.metrics.values() if m.reads_real]
        feature_readers = [m for m in readers if m.uses == "features"]
        cache_file, source, count = None, "computed", None
        cached = None
        if feature_readers:
            cache_file = str(engine.cache.path(key))
            cached, note = engine.cache.load(key)
            notes += [note] if note else []
        pending = list(readers)
        if cached is not None:
            features, states = cached["features"], cached.get("states", {})
            for m in feature_readers:
                state = states.get(_state_key(m))
                if state is not None:
                    m.load_real_state(state)
                else:  # rebuilt from the cached features, batch by batch as a real pass feeds them
                    for batch in features.split(cfg.batch_size):
                        m.update(batch, real=True)
            pending = [m for m in readers if m not in feature_readers]
            source, count = "cache", features.shape[0]
        if pending:
            count = self._pass(ref, n_total, n_wanted, pending, share, store=cached is None and bool(feature_readers),
                               key=key, notes=notes)
        self.ready = memo
        self.info = {"num_real": count, "cache_file": cache_file}
        return {**self.info, "source": source, "notes": notes}

    def _pass(self, ref, n_total, n_wanted, metrics, share, store: bool, key, notes) -> int:
        """One pass over the real images (each process its share); returns how many were read."""
        engine, cfg = self.engine, self.engine.cfg
        order = img.subset(n_total, n_wanted, torch_generator(cfg.seed, "real_subset"))
        if share.size == 1:  # skipped (unreadable) images are replaced by the next ones in the order
            outputs = [(i, engine.outputs(b, metrics)) for i, b in
                       enumerate(img.batches(ref.dataset, order, cfg.batch_size, limit=n_wanted))]
        else:  # each process its run of batches of the first n_wanted indices
            chunks = [order[lo:lo + cfg.batch_size] for lo in range(0, n_wanted, cfg.batch_size)]
            outputs = [(i, engine.outputs(b, metrics)) for i in owned(len(chunks), share)
                       for b in img.batches(ref.dataset, chunks[i], cfg.batch_size)]
        parts = share.gather(outputs)
        if share.rank != 0:
            return 0
        ordered = in_order(parts)
        count = sum(next(iter(o.values())).shape[0] for o in ordered)
        if count == 0:
            raise EvalError(f"the reference set {ref.identity.get('dataset')} has no readable images")
        for o in ordered:
            engine.feed(metrics, o, real=True)
        if store and engine.extractor is not None and "features" in (ordered[0] if ordered else {}):
            features = torch.cat([o["features"] for o in ordered])
            states = {_state_key(m): s for m in metrics if m.uses == "features" and (s := m.real_state()) is not None}
            note = engine.cache.save(key, features, states)
            notes += [note] if note else []
        return count
