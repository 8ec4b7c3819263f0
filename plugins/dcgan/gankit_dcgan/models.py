"""The DCGAN generator and discriminator, exactly as in the PyTorch tutorial.

With the defaults (nz=100, ngf=ndf=64, 3 channels, 64x64) these are the
tutorial's networks: 3,576,704 generator and 2,765,568 discriminator
parameters, no bias in any convolution, no BatchNorm on D's first layer.
Image sizes 32 and 128 take one block fewer or more; ``channels`` is the
tutorial's ``nc``. Layer order (and so the state-dict keys ``main.N.*``)
matches the tutorial's, except that D ends in a logit: the tutorial's final
Sigmoid lives in the loss (BCE on logits), which trains identically.

``spectral_norm=True`` turns D into SNGAN's "standard CNN" style: every
convolution spectrally normalised and no BatchNorm (per-batch rescaling would
undo the Lipschitz bound; the BatchNorm layers become ``nn.Identity`` so the
layer numbering stays the tutorial's), and every convolution has a bias, as
the standard CNN's do: without BatchNorm's shift a bias-free D is positively
homogeneous, D(a·x) = a·D(x) for a > 0, and cannot place its decision
boundary away from the origin. The default is the tutorial's D.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from gankit.nn.spectral import spectral_norm_all


def _check_size(image_size: int) -> int:
    """The number of middle (BatchNorm) blocks for ``image_size``: 64 -> 3."""
    blocks = int(math.log2(image_size)) - 3 if image_size > 0 else -1
    if blocks < 1 or 2 ** (blocks + 3) != image_size:
        raise ValueError(f"DCGAN supports image sizes 16, 32, 64, 128, ... (a power of two >= 16), got {image_size}")
    return blocks


def dcgan_init(module: nn.Module) -> None:
    """The tutorial's ``weights_init``: conv N(0, 0.02), any bias 0; BatchNorm weight N(1, 0.02), bias 0."""
    name = type(module).__name__
    if "Conv" in name:
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif "BatchNorm" in name:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """z (N x nz) -> image (N x channels x image_size x image_size) in [-1, 1]."""

    small_args = {"ngf": 8}  # a small, fast instance: what gankit's registry-wide tests build

    def __init__(self, nz: int = 100, ngf: int = 64, channels: int = 3, image_size: int = 64):
        super().__init__()
        self.nz = nz
        blocks = _check_size(image_size)
        mult = 2**blocks  # 8 at 64x64
        layers: list[nn.Module] = [
            # input is Z, going into a convolution
            nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * mult),
            nn.ReLU(True),
            # state size. (ngf*mult) x 4 x 4
        ]
        size = 4
        for _ in range(blocks):
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * mult // 2),
                nn.ReLU(True),
            ]
            mult //= 2
            size *= 2
            # state size. (ngf*mult) x size x size: (ngf*4) x 8 x 8, (ngf*2) x 16 x 16, ngf x 32 x 32 at 64x64
        layers += [
            nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False),
            nn.Tanh(),
            # state size. channels x image_size x image_size
        ]
        self.main = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: Tensor) -> Tensor:
        return self.main(z.view(z.shape[0], self.nz, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image (N x channels x image_size x image_size) -> one logit per image (N)."""

    small_args = {"ndf": 8}  # a small, fast instance: what gankit's registry-wide tests build

    def __init__(self, ndf: int = 64, channels: int = 3, image_size: int = 64, spectral_norm: bool = False):
        super().__init__()
        blocks = _check_size(image_size)
        norm = (lambda c: nn.Identity()) if spectral_norm else nn.BatchNorm2d
        bias = spectral_norm  # BatchNorm's shift stands in for a bias; without it the convolutions need their own
        layers: list[nn.Module] = [
            # input is (channels) x image_size x image_size; no BatchNorm on the first layer
            nn.Conv2d(channels, ndf, 4, 2, 1, bias=bias),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf) x image_size/2 x image_size/2
        ]
        mult = 1
        for _ in range(blocks):
            layers += [
                nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=bias),
                norm(ndf * mult * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            mult *= 2
            # state size. (ndf*mult) x ...: (ndf*2) x 16 x 16, (ndf*4) x 8 x 8, (ndf*8) x 4 x 4 at 64x64
        layers += [
            nn.Conv2d(ndf * mult, 1, 4, 1, 0, bias=bias),
            # state size. 1 x 1 x 1: a logit (the tutorial's Sigmoid is in the BCE loss)
        ]
        self.main = nn.Sequential(*layers)
        self.apply(dcgan_init)
        if spectral_norm:
            spectral_norm_all(self)  # after the initialisation: it then parametrises the weights

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x).view(-1)
