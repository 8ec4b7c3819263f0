"""Class-conditional DCGAN: a generator with class-conditional BatchNorm and a projection discriminator.

Both follow gankit's convention for conditional models (see
:mod:`gankit.nn.conditional`): an int attribute ``num_classes``, and labels (int64,
shape (N,)) as the second argument of ``forward``. Without labels the
generator draws the classes in turn (0, 1, 2, ...) and the discriminator
scores without its class term, so unconditional callers still work.
"""

from __future__ import annotations

from torch import Tensor, nn

from gankit.nn.class_batchnorm import ClassBatchNorm2d
from gankit.nn.conditional import cycle_labels
from gankit.nn.spectral import spectral_norm_all
from gankit_dcgan.models import DCGANDiscriminator, DCGANGenerator, _check_size


class ConditionalDCGANGenerator(nn.Module):
    """(z (N x nz), labels (N)) -> image (N x channels x image_size x image_size) in [-1, 1].

    The tutorial's generator with class-conditional BatchNorm (the generator of
    Miyato & Koyama 2018): z alone enters the first transposed convolution, and
    every BatchNorm scales and shifts with its class's own γ_c and β_c
    (:class:`~gankit.nn.class_batchnorm.ClassBatchNorm2d`).
    """

    # Why not the class's embedding joined to z (this generator until 2026-12-06): recipes/cond_mnist.yaml then
    # drew one digit per class whatever z (its output varying 7-8x less with z than between classes, against a
    # spectrally normalised D, and against the tutorial's without R1). Here the first layer sees z alone, so its
    # BatchNorm normalises variation that comes from z; the same recipe draws varied digits (tests/test_learning.py).

    small_args = {"ngf": 8}  # a small, fast instance: what gankit's registry-wide tests build

    def __init__(self, nz: int = 100, ngf: int = 64, channels: int = 3, image_size: int = 64,
                 num_classes: int = 10):
        super().__init__()
        self.nz = nz
        self.num_classes = num_classes
        tutorial = DCGANGenerator(nz=nz, ngf=ngf, channels=channels, image_size=image_size)
        # the tutorial's layers and numbering (main.N), each BatchNorm2d made the class's
        self.main = nn.ModuleList(ClassBatchNorm2d(m.num_features, num_classes) if isinstance(m, nn.BatchNorm2d)
                                  else m for m in tutorial.main)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if labels is None:
            labels = cycle_labels(z.shape[0], self.num_classes, z.device)
        h = z.view(z.shape[0], self.nz, 1, 1)
        for layer in self.main:
            h = layer(h, labels) if isinstance(layer, ClassBatchNorm2d) else layer(h)
        return h  # N x channels x image_size x image_size


class ProjectionDCGANDiscriminator(nn.Module):
    """(image, labels (N)) -> one logit per image (N): the tutorial's D with a projection
    head (Miyato & Koyama 2018): logit = ψ(φ(x)) + embed(y) · Σ_hw φ(x).

    φ is the tutorial's D up to its last convolution (ndf·2^blocks x 4 x 4
    features), ψ that last convolution.
    """

    small_args = {"ndf": 8}  # a small, fast instance: what gankit's registry-wide tests build

    def __init__(self, ndf: int = 64, channels: int = 3, image_size: int = 64, num_classes: int = 10,
                 spectral_norm: bool = False):
        super().__init__()
        self.num_classes = num_classes
        base = DCGANDiscriminator(ndf=ndf, channels=channels, image_size=image_size, spectral_norm=spectral_norm)
        self.features = base.main[:-1]  # φ: image -> (ndf*mult) x 4 x 4
        self.head = base.main[-1]  # ψ: 4x4 convolution -> 1 x 1 x 1, the unconditional logit
        width = ndf * 2 ** _check_size(image_size)  # φ's channels: ndf*8 at 64x64
        self.embed = nn.Embedding(num_classes, width)  # one projection vector per class
        nn.init.normal_(self.embed.weight, 0.0, 0.02)  # the DCGAN initialisation's scale
        if spectral_norm:
            spectral_norm_all(self.embed)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.features(x)  # N x (ndf*mult) x 4 x 4
        out = self.head(h).view(-1)  # N: ψ(φ(x))
        if labels is not None:
            # the projection term: ⟨embed(y), Σ_hw φ(x)⟩
            out = out + (self.embed(labels) * h.sum(dim=(2, 3))).sum(dim=1)
        return out
