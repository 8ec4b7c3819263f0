"""gankit-dcgan: the reference plugin, the DCGAN of the PyTorch tutorial.

Registers generator ``dcgan`` and discriminator ``dcgan`` through the
``gankit`` entry point declared in this package's pyproject.toml.
"""

import gankit

from gankit_dcgan.models import DCGANDiscriminator, DCGANGenerator

__version__ = "0.1.0"


@gankit.hookimpl
def gankit_register(registry):
    registry("generators").register("dcgan", DCGANGenerator)
    registry("discriminators").register("dcgan", DCGANDiscriminator)


__all__ = ["DCGANDiscriminator", "DCGANGenerator"]
