"""Sharing one evaluation among torchrun's processes.

Batches are dealt out in contiguous runs: with N processes, process r
measures the r-th N-th of the batches. The main process then receives every
process's outputs and feeds the metrics in the one-process order, so a
shared evaluation gives the one-process numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Share(Protocol):
    """This process's part of an evaluation (torchrun's world; :class:`OneProcess` without it)."""

    rank: int
    size: int

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj`` in rank order (on every process, or at least on rank 0)."""


@dataclass
class OneProcess:
    rank: int = 0
    size: int = 1

    def gather(self, obj: Any) -> list[Any]:
        return [obj]


def owned(num_batches: int, share: Share) -> range:
    """The contiguous run of batch indices ``share`` measures: rank r of N takes the r-th N-th."""
    lo, hi = num_batches * share.rank // share.size, num_batches * (share.rank + 1) // share.size
    return range(lo, hi)


def in_order(parts: list[list[tuple[int, Any]]]) -> list[Any]:
    """The gathered ``(batch index, outputs)`` pairs of every process, as one list in batch order."""
    return [outputs for _, outputs in sorted((item for part in parts for item in part), key=lambda item: item[0])]
