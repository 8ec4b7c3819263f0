"""Every registered generator, discriminator and loss, tested through the registries.

A newly registered component is picked up here without anyone writing a test.
"""

import math

import pytest
import torch
from torch import nn

import gankit
from gankit.core.plugins import get_host

GENERATORS = get_host().registry("generators").list()
DISCRIMINATORS = get_host().registry("discriminators").list()
LOSSES = get_host().registry("losses").list()
SHAPES = [(32, 1), (32, 3), (64, 3)]




def small(kind, name, image_size, channels):
    """The component at the given shape, small: its family declares how (``small_args``, in the plugin)."""
    reg = gankit.registry(kind)
    return reg.build(name, {"image_size": image_size, "channels": channels}, **getattr(reg.get(name), "small_args", {}))


@pytest.mark.parametrize("image_size,channels", SHAPES)
@pytest.mark.parametrize("name", GENERATORS)
def test_generator_shape_range_and_backward(name, image_size, channels):
    G = small("generators", name, image_size, channels)
    z = torch.randn(4, G.nz)
    out = G(z)
    assert out.shape == (4, channels, image_size, image_size)
    low, high = getattr(G, "output_range", (-1, 1)) or (-math.inf, math.inf)  # None: unbounded (gankit.contracts)
    assert out.min() >= low and out.max() <= high
    out.mean().backward()
    assert all(p.grad is not None for p in G.parameters() if p.requires_grad)


@pytest.mark.parametrize("image_size,channels", SHAPES)
@pytest.mark.parametrize("name", DISCRIMINATORS)
def test_discriminator_gives_one_logit_per_image(name, image_size, channels):
    D = small("discriminators", name, image_size, channels)
    x = torch.randn(4, channels, image_size, image_size, requires_grad=True)
    out = D(x)
    assert out.shape == (4,)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", LOSSES)
def test_loss_gives_finite_scalars_and_gradients_to_the_right_player(name):
    torch.manual_seed(0)
    G = small("generators", GENERATORS[0], 32, 1)
    D = small("discriminators", DISCRIMINATORS[0], 32, 1)
    loss = gankit.registry("losses").build(name)
    real = torch.rand(4, 1, 32, 32) * 2 - 1
    fake = G(torch.randn(4, G.nz))

    d_total, d_stats = loss.d_loss(D, real, fake.detach())
    assert d_total.dim() == 0 and torch.isfinite(d_total)
    d_total.backward()
    assert all(p.grad is None for p in G.parameters())  # D's loss never reaches G
    assert any(p.grad is not None for p in D.parameters())
    assert all(not v.requires_grad for v in d_stats.values())
    assert "real_sign" in d_stats  # E[sign(D(x))]: what ADA's controller reads

    D.zero_grad()
    g_total, g_stats = loss.g_loss(D, fake, **({"real": real} if loss.needs_real_for_g else {}))
    assert g_total.dim() == 0 and torch.isfinite(g_total)
    g_total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())


def test_bce_is_the_tutorials_objective():
    """D's loss is -[log D(x) + log(1 - D(G(z)))]; G's is -log D(G(z))."""

    class Fixed(nn.Module):
        def forward(self, x):  # logit = mean pixel value
            return x.flatten(1).mean(1)

    loss = gankit.registry("losses").build("bce")
    real = torch.full((2, 1, 4, 4), 2.0)  # D(x) = sigmoid(2)
    fake = torch.full((2, 1, 4, 4), -1.0)  # D(G(z)) = sigmoid(-1)
    d, stats = loss.d_loss(Fixed(), real, fake)
    s = torch.sigmoid
    expected = -(torch.log(s(torch.tensor(2.0))) + torch.log(1 - s(torch.tensor(-1.0))))
    assert torch.allclose(d, expected)
    assert torch.allclose(stats["d_real"], s(torch.tensor(2.0)))
    g, _ = loss.g_loss(Fixed(), fake)
    assert torch.allclose(g, -torch.log(s(torch.tensor(-1.0))))


def test_dcgan_is_the_tutorials_network():
    G = gankit.registry("generators").build("dcgan")
    D = gankit.registry("discriminators").build("dcgan")
    assert sum(p.numel() for p in G.parameters()) == 3_576_704
    assert sum(p.numel() for p in D.parameters()) == 2_765_568
    convs = [m for m in [*G.modules(), *D.modules()] if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert convs and all(c.bias is None for c in convs)
    assert isinstance(D.main[0], nn.Conv2d) and isinstance(D.main[1], nn.LeakyReLU)  # no BatchNorm first
    assert G(torch.randn(2, 100)).shape == (2, 3, 64, 64)
    weights = torch.cat([c.weight.flatten() for c in convs])
    assert abs(weights.mean()) < 1e-3 and abs(weights.std() - 0.02) < 1e-3
    bn = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all((m.bias == 0).all() for m in bn)
    assert abs(torch.cat([m.weight for m in bn]).mean() - 1) < 0.01


@pytest.mark.parametrize("image_size,blocks", [(32, 2), (64, 3), (128, 4)])
def test_dcgan_sizes_take_a_block_fewer_or_more(image_size, blocks):
    G = gankit.registry("generators").build("dcgan", image_size=image_size, ngf=8)
    bn = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bn) == blocks + 1
    assert G(torch.randn(1, 100)).shape == (1, 3, image_size, image_size)


def test_dcgan_rejects_an_unsupported_size():
    with pytest.raises(ValueError, match="power of two"):
        gankit.registry("generators").build("dcgan", image_size=48)
