"""gankit-dcgan: the reference plugin, the DCGAN of the PyTorch tutorial.

Registers generator ``dcgan`` and discriminator ``dcgan`` (the tutorial's),
and their class-conditional versions, generator ``dcgan_cond`` and
discriminator ``dcgan_projection``, through the ``gankit`` entry point
declared in this package's pyproject.toml.
"""

import gankit

from gankit_dcgan.conditional import ConditionalDCGANGenerator, ProjectionDCGANDiscriminator
from gankit_dcgan.models import DCGANDiscriminator, DCGANGenerator

__version__ = "0.1.0"


@gankit.hookimpl
def gankit_register(registry):
    registry("generators").register("dcgan", DCGANGenerator)
    registry("discriminators").register("dcgan", DCGANDiscriminator)
    registry("generators").register("dcgan_cond", ConditionalDCGANGenerator)
    registry("discriminators").register("dcgan_projection", ProjectionDCGANDiscriminator)


__all__ = ["ConditionalDCGANGenerator", "DCGANDiscriminator", "DCGANGenerator", "ProjectionDCGANDiscriminator"]
