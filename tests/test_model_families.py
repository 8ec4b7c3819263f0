"""The SNGAN plugin's networks and the discriminators' spectral-norm switch.

Shapes, ranges and gradients of every registered model are tested in
test_components.py; here: the paper's architectures and what the switches do.
"""

import pytest
import torch
from torch import nn

import gankit
from gankit.core.errors import GankitError
from gankit.core.plugins import get_host


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_sngan_comes_from_its_installed_entry_point():
    info = get_host().plugins["sngan"]
    assert "gankit-sngan" in info.origin and info.version == "0.1.0"
    assert info.registered == {"generators": ["sngan_resnet"], "discriminators": ["sngan_projection", "sngan_resnet"]}


def test_sngan_cifar_architecture_is_the_papers():
    """Miyato et al. 2018, Table 4: G 128 -> 4x4x256, three up-blocks of 256; D four blocks of 128."""
    G = gankit.registry("generators").build("sngan_resnet")
    D = gankit.registry("discriminators").build("sngan_resnet")
    assert G.nz == 128 and G.dense.out_features == 4 * 4 * 256 and len(G.blocks) == 3
    assert [b.conv2.out_channels for b in G.blocks] == [256, 256, 256]
    assert [b.down for b in D.blocks[1:]] == [True, False, False] and D.feature_dim == 128
    assert (count(G), count(D)) == (4_276_739, 1_053_825)
    assert G(torch.randn(2, 128)).shape == (2, 3, 32, 32)


@pytest.mark.parametrize("size,bottom", [(48, 6), (64, 8)])
def test_sngan_stl_architecture_at_48_and_64(size, bottom):
    """Table 5: G 128 -> 6x6x512 (48x48), up-blocks to 256, 128, 64; D 64 -> 128 -> 256 -> 512 -> 1024."""
    G = gankit.registry("generators").build("sngan_resnet", image_size=size, width=8)
    D = gankit.registry("discriminators").build("sngan_resnet", image_size=size, width=8)
    assert G.bottom == bottom and [b.conv2.out_channels for b in G.blocks] == [32, 16, 8]
    assert D.feature_dim == 128 and [b.down for b in D.blocks[1:]] == [True, True, True, False]
    x = G(torch.randn(2, 128))
    assert x.shape == (2, 3, size, size) and D(x).shape == (2,)


def test_sngan_refuses_sizes_without_an_architecture():
    with pytest.raises(GankitError, match="image sizes 32.*48 and 64.*data.image_size"):
        gankit.registry("generators").build("sngan_resnet", image_size=128)
    with pytest.raises(GankitError, match="width must be >= 1"):
        gankit.registry("discriminators").build("sngan_resnet", width=0)


def parametrized(module):
    return [m for m in module.modules() if hasattr(m, "parametrizations")]


def largest_singular_value(layer):
    w = layer.weight.detach()
    return torch.linalg.matrix_norm(w.flatten(1), ord=2)


@pytest.mark.parametrize("name,kwargs", [("sngan_resnet", {}), ("sngan_projection", {}),
                                         ("dcgan", {"spectral_norm": True}),
                                         ("dcgan_projection", {"spectral_norm": True})])
def test_spectral_norm_bounds_every_layer(name, kwargs):
    torch.manual_seed(0)
    D = gankit.registry("discriminators").build(name, image_size=32, channels=3, **kwargs)
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    x = torch.randn(8, 3, 32, 32)
    for _ in range(30):  # one power iteration per forward pass in training mode
        D(x)
    D.eval()
    assert all(abs(float(largest_singular_value(m)) - 1) < 0.05 for m in layers)


@pytest.mark.parametrize("name", ["sngan_resnet", "sngan_projection"])
def test_sngan_spectral_norm_can_be_switched_off(name):
    D = gankit.registry("discriminators").build(name, spectral_norm=False)
    assert parametrized(D) == []


def test_dcgan_discriminator_is_the_tutorials_unless_switched():
    plain = gankit.registry("discriminators").build("dcgan")
    assert count(plain) == 2_765_568 and parametrized(plain) == []
    sn = gankit.registry("discriminators").build("dcgan", spectral_norm=True)
    # same convolutions, each with a bias, BatchNorm (and its shift) replaced by identities: the tutorial's layer
    # numbering is kept
    assert count(sn) == 2_765_568 - 2 * (128 + 256 + 512) + (64 + 128 + 256 + 512 + 1)
    assert all(m.bias is not None for m in sn.modules() if isinstance(m, nn.Conv2d))
    assert all(m.bias is None for m in plain.modules() if isinstance(m, nn.Conv2d))
    assert [type(m).__name__ for m in sn.main][:4] == ["ParametrizedConv2d", "LeakyReLU", "ParametrizedConv2d",
                                                      "Identity"]


def test_conditional_dcgan_is_the_tutorials_generator_with_a_batchnorm_per_class():
    from gankit.nn.class_batchnorm import ClassBatchNorm2d

    G = gankit.registry("generators").build("dcgan_cond", num_classes=10)
    tutorial = gankit.registry("generators").build("dcgan")
    assert G.nz == 100 and G.num_classes == 10
    # the same layers in the same places; each BatchNorm's γ and β become one per class
    assert [type(m).__name__ for m in G.main] == [
        "ClassBatchNorm2d" if type(m).__name__ == "BatchNorm2d" else type(m).__name__ for m in tutorial.main]
    affine = sum(2 * m.num_features for m in tutorial.main if isinstance(m, nn.BatchNorm2d))
    assert count(G) == count(tutorial) + 9 * affine
    # z alone enters the first layer: two classes with one z differ only through the BatchNorms' γ_c and β_c
    norms = [m for m in G.main if isinstance(m, ClassBatchNorm2d)]
    for m in norms:
        m.gain.weight.data.copy_(m.gain.weight.data[:1].expand_as(m.gain.weight))
        m.shift.weight.data.copy_(m.shift.weight.data[:1].expand_as(m.shift.weight))
    G.eval()
    z = torch.randn(4, 100)
    with torch.no_grad():
        assert torch.equal(G(z, torch.zeros(4, dtype=torch.long)), G(z, torch.full((4,), 7)))

