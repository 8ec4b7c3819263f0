"""Class-conditional BatchNorm (de Vries et al. 2017; Miyato & Koyama 2018): a scale and shift per class.

    y = γ_c · (x − μ) / sqrt(σ² + ε) + β_c        c: the image's class

μ and σ² are BatchNorm's (the batch's in training, the running or standing
statistics when sampling, as the recipe's ``sampling.batchnorm`` says), over
all classes together; γ_c and β_c are rows of two embeddings. The plain
BatchNorm inside (``norm``, without its own affine) is what gankit's sampling
modes and ``train.sync_batchnorm`` see and convert, so both keep working.
"""

from __future__ import annotations

from torch import Tensor, nn


class ClassBatchNorm2d(nn.Module):
    """(x (N x C x H x W), labels (N)) -> x normalised, then scaled and shifted by its class's γ and β."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)  # γ_c
        self.shift = nn.Embedding(num_classes, num_features)  # β_c
        # as a plain BatchNorm starts under the DCGAN initialisation: γ ~ N(1, 0.02), β = 0, for every class
        nn.init.normal_(self.gain.weight, 1.0, 0.02)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        h = self.norm(x)
        return self.gain(labels)[:, :, None, None] * h + self.shift(labels)[:, :, None, None]
