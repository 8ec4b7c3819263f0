"""gankit-r3gan: R3GAN's networks (Huang et al. 2024, "The GAN is dead; long live the GAN!
A Modern GAN Baseline", NeurIPS), ported from brownvc/R3GAN.

Registers generator ``r3gan`` and discriminator ``r3gan`` through the
``gankit`` entry point declared in this package's pyproject.toml. R3GAN trains
them with the relativistic pairing loss and both zero-centred penalties::

    loss: {name: relativistic}
    regularizers: [{name: r1, gamma: 0.05}, {name: r2, gamma: 0.05}]

:mod:`gankit_r3gan.official` builds them from the official kwargs and loads
official state dicts.
"""

import gankit

from gankit_r3gan.models import R3GANDiscriminator, R3GANGenerator

__version__ = "0.1.0"


@gankit.hookimpl
def gankit_register(registry):
    registry("generators").register("r3gan", R3GANGenerator)
    registry("discriminators").register("r3gan", R3GANDiscriminator)


__all__ = ["R3GANDiscriminator", "R3GANGenerator"]
