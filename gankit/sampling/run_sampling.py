"""A training run's sampling: its grids, evaluations and checkpoints in the recipe's ``sampling.batchnorm``.

:class:`RunSampling` is the trainer's only contact with
:mod:`gankit.sampling.batchnorm`; the checkpoint entry it writes is what
:func:`gankit.load_generator` reads back.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from gankit.sampling.batchnorm import check_mode, estimate_standing, has_batchnorm
from gankit.sampling.images import generate_from


class RunSampling:
    """A training run's ``sampling`` section at work: one mode for its grids, evaluations and checkpoints.

        sampling = RunSampling(recipe.sampling, recipe.seed)
        images = sampling.generate(G, z, labels, step)     # grids and evaluation at ``step``
        checkpoint["sampling"] = sampling.state(G, step, "ema")

    Standing statistics are estimated once per step that samples or
    evaluates (the same for both), and that step's checkpoint holds them:
    the final one always, so loading a finished run never estimates them.
    """

    def __init__(self, section: Any, seed: int):
        self.batchnorm = check_mode(section.batchnorm)
        self.batches, self.batch_size = int(section.standing_batches), int(section.standing_batch_size)
        self.seed = int(seed)
        self._cached: tuple[int, int, dict[str, Tensor]] | None = None  # (id(G), step, statistics)

    def standing(self, G: nn.Module, step: int) -> dict[str, Tensor] | None:
        """This step's standing statistics of G (None in other modes, or for a G without BatchNorm)."""
        if self.batchnorm != "standing" or not has_batchnorm(G):
            return None
        if self._cached is None or self._cached[:2] != (id(G), step):
            self._cached = (id(G), step, estimate_standing(G, self.batches, self.batch_size, self.seed))
        return self._cached[2]

    def generate(self, G: nn.Module, z: Tensor, labels: Tensor | None = None, step: int = 0,
                 batch_size: int = 256) -> Tensor:
        """G's images for ``z`` (and labels) in this run's sampling mode."""
        return generate_from(G, z, labels, batch_size=batch_size, batchnorm=self.batchnorm,
                             standing=self.standing(G, step))

    def state(self, G: nn.Module, step: int, generator: str) -> dict[str, Any]:
        """The checkpoint's ``sampling`` entry: the mode and, for ``standing``, the statistics of ``generator``.

        The statistics are those this step's grid or evaluation used (the
        last step always samples); a checkpoint at a step that did neither
        (``train.keep_every``, a stop on Ctrl-C) is not held up estimating
        them and stores None: loading it estimates them, the same way.
        """
        cached = self._cached is not None and self._cached[:2] == (id(G), step)
        standing = self._cached[2] if cached else None
        return {"batchnorm": self.batchnorm, "generator": generator, "step": int(step),
                "standing": None if standing is None else {k: v.detach().cpu() for k, v in standing.items()},
                "batches": self.batches, "batch_size": self.batch_size, "seed": self.seed}
