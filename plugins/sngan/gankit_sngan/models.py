"""The ResNet SNGAN generator and discriminators (Miyato et al. 2018, Appendix B).

Two architectures, chosen by ``image_size`` (``width`` None: the paper's):

- 32x32, CIFAR-10 (Table 4): G dense -> 4x4, three up-blocks at width 256;
  D a first block and three blocks at width 128 (the first two halve the size).
- 48x48 and 64x64, STL-10 (Table 5; 64 is the same network one step larger):
  G dense -> s/8 x s/8 with 8w channels, up-blocks 8w -> 4w -> 2w -> w
  (w = 64); D blocks w -> 2w -> 4w -> 8w halving the size, then 8w -> 16w.

D ends in ReLU, a global sum over positions and a dense layer to one logit;
``spectral_norm`` (on by default, as in the paper) normalises every layer of
it. ``sngan_projection`` adds the class projection of Miyato & Koyama (2018):
logit = ψ(φ(x)) + embed(y) · φ(x).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from gankit.core.errors import GankitError
from gankit.nn.spectral import spectral_norm_all
from gankit_sngan.blocks import DBlock, FirstDBlock, GBlock, conv


def architecture(image_size: int) -> str:
    """``cifar`` for 32x32, ``stl`` for 48x48 and 64x64."""
    if image_size == 32:
        return "cifar"
    if image_size in (48, 64):
        return "stl"
    raise GankitError(f"sngan_resnet has the paper's architectures for image sizes 32 (CIFAR-10), 48 and 64 "
                      f"(STL-10), got {image_size}; set data.image_size to one of them")


def _width(width: int | None, default: int) -> int:
    if width is None:
        return default
    if width < 1:
        raise GankitError(f"sngan_resnet: width must be >= 1 (or null for the paper's {default}), got {width}")
    return width


def _dense(cin: int, cout: int) -> nn.Linear:
    layer = nn.Linear(cin, cout)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class SNGANGenerator(nn.Module):
    """z (N x nz) -> image (N x channels x image_size x image_size) in [-1, 1]."""

    small_args = {"width": 8}  # a small, fast instance: what gankit's registry-wide tests build

    def __init__(self, nz: int = 128, width: int | None = None, channels: int = 3, image_size: int = 32):
        super().__init__()
        self.nz = nz
        if architecture(image_size) == "cifar":
            w = _width(width, 256)
            chans = [w, w, w, w]
        else:
            w = _width(width, 64)
            chans = [8 * w, 4 * w, 2 * w, w]
        self.bottom = image_size // 8  # 4 at 32x32 (ends at 32 after three x2 blocks), 6 at 48, 8 at 64
        self.dense = _dense(nz, self.bottom**2 * chans[0])
        self.blocks = nn.Sequential(*(GBlock(a, b) for a, b in zip(chans, chans[1:])))
        self.out = nn.Sequential(nn.BatchNorm2d(chans[-1]), nn.ReLU(), conv(chans[-1], channels, 3, 1.0), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        n = z.shape[0]
        h = self.dense(z.view(n, self.nz)).view(n, -1, self.bottom, self.bottom)  # chans[0] x s/8 x s/8
        h = self.blocks(h)  # chans[-1] x image_size x image_size
        return self.out(h)  # channels x image_size x image_size


class SNGANDiscriminator(nn.Module):
    """image (N x channels x image_size x image_size) -> one logit per image (N)."""

    small_args = {"width": 8}  # a small, fast instance: what gankit's registry-wide tests build

    def __init__(self, width: int | None = None, channels: int = 3, image_size: int = 32,
                 spectral_norm: bool = True):
        super().__init__()
        if architecture(image_size) == "cifar":
            w = _width(width, 128)
            blocks = [FirstDBlock(channels, w), DBlock(w, w, True), DBlock(w, w, False), DBlock(w, w, False)]
            self.feature_dim = w  # 128 x 8 x 8 before pooling
        else:
            w = _width(width, 64)
            blocks = [FirstDBlock(channels, w), DBlock(w, 2 * w, True), DBlock(2 * w, 4 * w, True),
                      DBlock(4 * w, 8 * w, True), DBlock(8 * w, 16 * w, False)]
            self.feature_dim = 16 * w  # 1024 x s/16 x s/16 before pooling
        self.blocks = nn.Sequential(*blocks)
        self.dense = _dense(self.feature_dim, 1)  # ψ
        if spectral_norm:
            spectral_norm_all(self)

    def features(self, x: Tensor) -> Tensor:
        """φ(x): ReLU, then the sum over positions (N x feature_dim)."""
        return F.relu(self.blocks(x)).sum(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.dense(self.features(x)).view(-1)


class SNGANProjectionDiscriminator(SNGANDiscriminator):
    """(image, labels (N)) -> one logit per image (N): logit = ψ(φ(x)) + embed(y) · φ(x).

    Without labels it returns ψ(φ(x)) alone (unconditional callers still work).
    """

    def __init__(self, num_classes: int = 10, width: int | None = None, channels: int = 3, image_size: int = 32,
                 spectral_norm: bool = True):
        # normalised below, once the embedding is there too
        super().__init__(width=width, channels=channels, image_size=image_size, spectral_norm=False)
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, self.feature_dim)  # one projection vector per class
        nn.init.xavier_uniform_(self.embed.weight)
        if spectral_norm:
            spectral_norm_all(self)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.features(x)  # N x feature_dim
        out = self.dense(h).view(-1)  # N: ψ(φ(x))
        if labels is not None:
            out = out + (self.embed(labels) * h).sum(dim=1)  # the projection term: ⟨embed(y), φ(x)⟩
        return out
