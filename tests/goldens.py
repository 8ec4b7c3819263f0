"""The official implementations' golden outputs (``../shared/parity`` beside the repository), and how the
parity tests compare with them.

A golden file that is missing fails the test under CI (``CI=true``: the
files are part of the checkout there) and skips it elsewhere, naming the
path. Comparisons follow ../shared/parity/README.md: per tensor,
``rel_inf = max|ours - theirs| / max|theirs|``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from helpers import REPO

PARITY = REPO.parent / "shared" / "parity"


def golden_path(name: str) -> Path:
    return PARITY / name


def load_golden(name: str):
    """The golden file ``name``, read with ``weights_only=True``; missing: fail under CI, else skip."""
    path = golden_path(name)
    if not path.is_file():
        message = f"golden outputs not found at {path} (../shared/parity beside the repository; see its README)"
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return torch.load(path, weights_only=True)


def rel_inf(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """max |ours - theirs| / max |theirs| (0 when both are all zero)."""
    ours, theirs = ours.detach().double(), theirs.detach().double()
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    diff = float((ours - theirs).abs().max()) if ours.numel() else 0.0
    scale = float(theirs.abs().max()) if theirs.numel() else 0.0
    return diff / scale if scale > 0 else diff


def rel_l2(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """‖ours - theirs‖₂ / ‖theirs‖₂."""
    ours, theirs = ours.detach().double(), theirs.detach().double()
    scale = float(theirs.norm())
    return float((ours - theirs).norm()) / scale if scale > 0 else float((ours - theirs).norm())


def worst(pairs: dict[str, tuple[torch.Tensor, torch.Tensor]], metric=rel_inf) -> tuple[float, str]:
    """The largest difference over named (ours, theirs) pairs, and its name."""
    if not pairs:
        return 0.0, ""
    values = {name: metric(a, b) for name, (a, b) in pairs.items()}
    name = max(values, key=values.get)
    return values[name], name
