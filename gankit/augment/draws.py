"""Where an augmentation's random numbers come from: a generator, or draws given in advance.

    aug(x, generator=torch.Generator().manual_seed(1))        # a run: its private stream
    aug(x, generator=ReplayedDraws(draws, kinds))             # another run's draws, in call order

A pipeline asks for each number by kind and shape (``uniform``: U[0, 1),
``normal``: N(0, 1)), always in the same order, so the draws of one
implementation can be fed to another: the official StyleGAN2-ADA pipeline's
``torch.rand``/``torch.randn`` results, recorded call by call, replayed into
:class:`gankit.augment.ada.ADAugment` (which draws in the official order)
give the official transforms. Shapes need only agree in their number of
elements: the official code draws some gates as ``[N, 1, 1]`` where gankit
draws ``[N]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

# The official code's function names for the two kinds.
OFFICIAL = {"rand": "uniform", "randn": "normal"}


class ReplayedDraws:
    """Draws given in advance, handed out in order; a draw of another kind or size is an error.

    ``kinds`` name each draw: ``uniform``/``normal``, or the official
    ``rand``/``randn``. :attr:`left` says how many are still unused.
    """

    def __init__(self, draws: Sequence[Tensor], kinds: Sequence[str]):
        if len(draws) != len(kinds):
            raise ValueError(f"{len(draws)} draws but {len(kinds)} kinds")
        self._draws = list(draws)
        self._kinds = [OFFICIAL.get(k, k) for k in kinds]
        self.used = 0

    @property
    def left(self) -> int:
        return len(self._draws) - self.used

    def draw(self, kind: str, shape: tuple[int, ...], device: torch.device) -> Tensor:
        """The next draw, which must be of ``kind`` and hold ``prod(shape)`` numbers, as ``shape``."""
        if self.used >= len(self._draws):
            raise IndexError(f"all {len(self._draws)} given draws are used; the pipeline asked for one more "
                             f"({kind} {tuple(shape)})")
        value, given = self._draws[self.used], self._kinds[self.used]
        if given != kind or value.numel() != torch.Size(shape).numel():
            raise ValueError(f"draw {self.used}: the pipeline asked for {kind} {tuple(shape)}, the next given draw "
                             f"is {given} {tuple(value.shape)}")
        self.used += 1
        return value.reshape(shape).to(device)


def draw(source, kind: str, shape: tuple[int, ...], device: torch.device) -> Tensor:
    """``kind`` numbers of ``shape`` (float32) from ``source``: a generator, a :class:`ReplayedDraws`, or None
    (the global stream of ``device``). A generator on another device draws there; the result is on ``device``."""
    if source is not None and not isinstance(source, torch.Generator):
        return source.draw(kind, shape, device)
    fn = torch.rand if kind == "uniform" else torch.randn
    if source is None:
        return fn(shape, device=device)
    return fn(shape, generator=source, device=source.device).to(device)
