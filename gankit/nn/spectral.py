"""Spectral normalisation (Miyato et al. 2018) as a switch on a whole discriminator.

    D = spectral_norm_all(D)    # every conv, linear and embedding layer, in place

Each weight W is divided by its largest singular value σ(W), estimated with
one power iteration per forward pass in training mode (torch's
``parametrizations.spectral_norm``), which bounds each layer's Lipschitz
constant by 1. Apply it after initialising the weights: the layers' ``weight``
is computed from ``parametrizations.weight.original`` afterwards.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)


def spectral_norm_all(module: nn.Module) -> nn.Module:
    """``module`` with spectral normalisation on every conv, linear and embedding layer."""
    for layer in list(module.modules()):
        if isinstance(layer, LAYERS):
            spectral_norm(layer)
    return module
