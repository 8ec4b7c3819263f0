"""Discriminator regularisers: penalties added to D's loss, one family per file.

Built in: ``gp`` (WGAN-GP, :mod:`~gankit.regularizers.gradient_penalty`),
``r1`` and ``r2`` (zero-centred penalties on real and fake images,
:mod:`~gankit.regularizers.zero_centered`). The interface is
:class:`Regularizer` (:mod:`~gankit.regularizers.base`).
"""

from gankit.regularizers.base import Regularizer, input_gradients
from gankit.regularizers.gradient_penalty import GradientPenalty
from gankit.regularizers.zero_centered import R1Penalty, R2Penalty

__all__ = ["GradientPenalty", "R1Penalty", "R2Penalty", "Regularizer", "input_gradients"]
