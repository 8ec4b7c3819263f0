"""gankit-stylegan2: StyleGAN2-ADA's networks (NVlabs/stylegan2-ada-pytorch, training/networks.py).

Registers generator ``stylegan2``, discriminator ``stylegan2`` and the
generator regulariser ``path_length`` through the ``gankit`` entry point
declared in this package's pyproject.toml. Given the
official weights they give the official outputs (float32 CPU, within 1e-5 of
the stored golden outputs; see tests/test_stylegan2_parity.py).
:mod:`gankit_stylegan2.official` builds them from the official kwargs and
converts official state dicts.

    generator:     {name: stylegan2, mapping_layers: 2, conv_clamp: 256, style_mixing_prob: 0}
    discriminator: {name: stylegan2, architecture: orig, mbstd_group_size: 32, conv_clamp: 256}

(the official ``cifar`` configuration at 32x32.)
"""

import gankit

from gankit_stylegan2.discriminator import StyleGAN2Discriminator
from gankit_stylegan2.generator import StyleGAN2Generator
from gankit_stylegan2.path_length import PathLengthPenalty

__version__ = "0.1.0"


@gankit.hookimpl
def gankit_register(registry):
    registry("generators").register("stylegan2", StyleGAN2Generator)
    registry("discriminators").register("stylegan2", StyleGAN2Discriminator)
    registry("regularizers").register("path_length", PathLengthPenalty)


__all__ = ["PathLengthPenalty", "StyleGAN2Discriminator", "StyleGAN2Generator"]
