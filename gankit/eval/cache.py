"""The reference-features cache: real images go through the extractor once per identity.

A cache entry is keyed by everything the features depend on: the reference
set (dataset name, root, split, transform, number of images), the images'
quantisation, the extractor (name, weights sha256, resolution and resize
mode), how many real images and which subset (its seed). The file holds the
real features as a plain float32 tensor (KID, PRDC and plugin feature
metrics are rebuilt from them), the metrics' own reference states
(torchmetrics FID's float64 feature sum, sum of outer products and count,
loaded as they are), the images' class labels when a per-class metric
needed them, and the key it was written for, written with
``torch.save`` and read with ``torch.load(weights_only=True)``.

Location: ``eval.cache_dir``, else ``$GANKIT_CACHE_DIR``, else ``~/.cache/gankit``.
Writes go to a temporary file in the same folder and are renamed into place
(``os.replace`` is atomic), so two runs racing to fill the same entry each
write a complete file and readers never see a partial one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

FORMAT = 2  # 2: metric states beside the features
ENV_DIR = "GANKIT_CACHE_DIR"


def cache_root(configured: str | None = None) -> Path:
    """``eval.cache_dir`` > ``$GANKIT_CACHE_DIR`` > ``~/.cache/gankit``."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get(ENV_DIR, "").strip()
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/gankit").expanduser()


def _key_text(key: dict[str, Any]) -> str:
    return json.dumps({"format": FORMAT, **key}, sort_keys=True, default=str)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:40] or "x"


class ReferenceCache:
    """Load and store reference features under one cache folder."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(_key_text(key).encode()).hexdigest()[:16]
        ref = key.get("reference", {})
        name = f"{_slug(str(ref.get('dataset', 'ref')))}-{_slug(str(key.get('feature_extractor', 'x')))}"
        return self.root / "reference" / f"{name}-n{key.get('num_real', 'all')}-{digest}.pt"

    def load(self, key: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """({"features", "states", "labels"}, None) on a hit; (None, a notice or None) on a miss."""
        path = self.path(key)
        if not path.is_file():
            return None, None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated or foreign: recompute and overwrite
            return None, f"ignored unreadable reference cache {path} ({type(exc).__name__}: {exc}); recomputing"
        if (
            not isinstance(entry, dict)
            or entry.get("key") != _key_text(key)
            or not isinstance(entry.get("features"), Tensor)
            or entry["features"].dim() != 2
        ):
            return None, f"ignored reference cache {path}: written for other settings; recomputing"
        states = entry.get("states") if isinstance(entry.get("states"), dict) else {}
        labels = entry.get("labels") if isinstance(entry.get("labels"), Tensor) else None
        return {"features": entry["features"], "states": states, "labels": labels}, None

    def save(self, key: dict[str, Any], features: Tensor, states: dict[str, dict[str, Tensor]] | None = None,
             labels: Tensor | None = None) -> str | None:
        """Store atomically (``labels``: the images' classes, for per-class metrics); a notice when the folder
        cannot be written (the run goes on)."""
        path = self.path(key)
        entry = {"format": FORMAT, "key": _key_text(key), "features": features.detach().cpu().float().contiguous(),
                 "states": {name: {k: v.detach().cpu() for k, v in state.items()} for name, state in (states or {}).items()}}
        if labels is not None:
            entry["labels"] = labels.detach().cpu().to(torch.int64)
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                torch.save(entry, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            return f"could not write the reference cache {path} ({exc}); the next run recomputes it"
        return None
