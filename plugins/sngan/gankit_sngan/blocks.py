"""SNGAN's residual blocks (Miyato et al. 2018, Appendix B, Figure 8; after the authors' Chainer code).

Initialisation as in that code: Glorot-uniform with gain √2 for the
convolutions inside a residual branch, gain 1 for shortcuts and dense layers.
Spectral normalisation is applied to the whole discriminator afterwards
(:func:`gankit.nn.spectral.spectral_norm_all`), not here.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn


def conv(cin: int, cout: int, kernel: int, gain: float) -> nn.Conv2d:
    """A k x k convolution keeping the size ('same' padding), Glorot-initialised."""
    layer = nn.Conv2d(cin, cout, kernel, 1, kernel // 2)
    nn.init.xavier_uniform_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class GBlock(nn.Module):
    """Generator block, x2 upsampling: cin x s x s -> cout x 2s x 2s.

    residual: BN, ReLU, upsample (nearest), conv3x3, BN, ReLU, conv3x3
    shortcut: upsample, conv1x1
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv(cin, cout, 3, math.sqrt(2))
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), conv(cout, cout, 3, math.sqrt(2))
        self.shortcut = conv(cin, cout, 1, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")  # cin x 2s x 2s
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))  # cout x 2s x 2s
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """Discriminator block: cin x s x s -> cout x s/2 x s/2 (``down``) or cout x s x s.

    residual: ReLU, conv3x3 (cin -> cin), ReLU, conv3x3 (cin -> cout), [avg-pool 2]
    shortcut: conv1x1, [avg-pool 2] when the channels or the size change, else the identity
    """

    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        self.down = down
        self.conv1 = conv(cin, cin, 3, math.sqrt(2))
        self.conv2 = conv(cin, cout, 3, math.sqrt(2))
        self.shortcut = conv(cin, cout, 1, 1.0) if (cin != cout or down) else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x))))  # cout x s x s
        sc = x if self.shortcut is None else self.shortcut(x)
        if self.down:
            h, sc = F.avg_pool2d(h, 2), F.avg_pool2d(sc, 2)  # cout x s/2 x s/2
        return h + sc


class FirstDBlock(nn.Module):
    """The discriminator's first block ("optimized block"): image -> cout x s/2 x s/2.

    residual: conv3x3, ReLU, conv3x3, avg-pool 2 (no ReLU on the image itself)
    shortcut: avg-pool 2, conv1x1
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = conv(cin, cout, 3, math.sqrt(2))
        self.conv2 = conv(cout, cout, 3, math.sqrt(2))
        self.shortcut = conv(cin, cout, 1, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(x))), 2)  # cout x s/2 x s/2
        return h + self.shortcut(F.avg_pool2d(x, 2))
