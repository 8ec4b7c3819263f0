"""gankit-sngan: the ResNet SNGAN of Miyato et al. (2018), "Spectral Normalization for GANs".

Registers generator ``sngan_resnet``, discriminator ``sngan_resnet`` and the
class-conditional discriminator ``sngan_projection`` (Miyato & Koyama 2018)
through the ``gankit`` entry point declared in this package's pyproject.toml.
``recipes/sngan_cifar10.yaml`` trains it with the paper's settings.
"""

import gankit

from gankit_sngan.models import SNGANDiscriminator, SNGANGenerator, SNGANProjectionDiscriminator

__version__ = "0.1.0"


@gankit.hookimpl
def gankit_register(registry):
    registry("generators").register("sngan_resnet", SNGANGenerator)
    registry("discriminators").register("sngan_resnet", SNGANDiscriminator)
    registry("discriminators").register("sngan_projection", SNGANProjectionDiscriminator)


__all__ = ["SNGANDiscriminator", "SNGANGenerator", "SNGANProjectionDiscriminator"]
