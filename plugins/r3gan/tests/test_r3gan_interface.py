"""gankit's side of R3GAN: registration, shapes, labels, narrow models, reduced precision,
the initialisation, the stage layouts and the argument checks."""

import math

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.core.errors import GankitError
from gankit.core.plugins import get_host
from gankit.nn.conditional import cycle_labels
from gankit_r3gan.config import default_widths
from gankit_r3gan.layers import LRELU_GAIN, BiasedLeakyReLU, ResidualBlock
from gankit_r3gan.models import R3GANDiscriminator, R3GANGenerator


def build(kind, **kwargs):
    return gankit.registry(kind).build("r3gan", **kwargs)


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_r3gan_comes_from_its_installed_entry_point():
    info = get_host().plugins["r3gan"]
    assert "gankit-r3gan" in info.origin and info.version == "0.1.0"
    assert info.registered == {"generators": ["r3gan"], "discriminators": ["r3gan"]}
    assert gankit.registry("generators").get("r3gan") is R3GANGenerator
    assert gankit.registry("discriminators").get("r3gan") is R3GANDiscriminator


@pytest.mark.parametrize("image_size,channels", [(32, 1), (32, 3), (64, 1), (64, 3)])
def test_narrow_models_are_tiny_and_fast(image_size, channels):
    torch.manual_seed(0)
    G = build("generators", image_size=image_size, channels=channels, width=8)
    D = build("discriminators", image_size=image_size, channels=channels, width=8)
    assert count(G) < 30_000 and count(D) < 30_000
    assert G.layout.widths == (8,) * G.layout.num_stages and set(G.layout.cardinalities) == {1}
    x = G(torch.randn(4, G.nz))
    assert x.shape == (4, channels, image_size, image_size) and x.dtype == torch.float32
    logits = D(x)
    assert logits.shape == (4,)
    logits.sum().backward()
    assert all(p.grad is not None for p in [*G.parameters(), *D.parameters()])


def test_conditional_models_take_labels():
    torch.manual_seed(0)
    G = build("generators", image_size=16, channels=1, width=8, num_classes=4)
    D = build("discriminators", image_size=16, channels=1, width=8, num_classes=4)
    assert G.num_classes == D.num_classes == 4
    assert G.embed.weight.shape == (G.nz, 4) and D.embed.weight.shape == (8, 4)  # defaults: nz, the 4x4 width
    z = torch.randn(4, G.nz)
    a, b = G(z, torch.zeros(4, dtype=torch.long)), G(z, torch.ones(4, dtype=torch.long))
    assert a.shape == (4, 1, 16, 16) and not torch.allclose(a, b)
    assert torch.equal(G(z), G(z, cycle_labels(4, 4)))  # without labels: the classes in turn
    y = torch.tensor([3, 0, 2, 1])
    assert torch.equal(G(z, y), G(z, F.one_hot(y, 4).float()))  # one-hot vectors as the official code takes

    x = torch.randn(4, 1, 16, 16)
    scores = torch.stack([D(x, torch.full((4,), k)) for k in range(4)])  # 4 classes x 4 images
    assert scores.shape == (4, 4) and not torch.allclose(scores[0], scores[1])
    torch.testing.assert_close(D(x), scores.mean(dim=0))  # without labels: the average class's score
    D(x, y).sum().backward()
    assert D.embed.weight.grad.abs().sum() > 0


def test_unconditional_models_refuse_labels():
    G, D = build("generators", image_size=16, width=8), build("discriminators", image_size=16, width=8)
    assert not hasattr(G, "num_classes") and not hasattr(D, "num_classes")
    with pytest.raises(GankitError, match="unconditional"):
        G(torch.randn(2, 64), torch.zeros(2, dtype=torch.long))
    with pytest.raises(GankitError, match="unconditional"):
        D(torch.randn(2, 3, 16, 16), torch.zeros(2, dtype=torch.long))


def stage_dtypes(module, run):
    """The dtype of every stage's output during ``run()``."""
    seen = []
    hooks = [s.register_forward_hook(lambda m, i, o: seen.append(o.dtype)) for s in module.stages]
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    return seen


@pytest.mark.parametrize("reduced_dtype", ["bfloat16", "float16"])
def test_reduced_precision_stages_stay_float32_on_cpu(reduced_dtype):
    G = build("generators", width=8, reduced_dtype=reduced_dtype)  # fp16_stages: the paper's
    D = build("discriminators", width=8, reduced_dtype=reduced_dtype)
    want = getattr(torch, reduced_dtype)
    assert [s.cuda_dtype for s in G.stages] == [torch.float32, want, want, want]
    assert [s.cuda_dtype for s in D.stages] == [torch.float32, want, want, want]
    x = G(torch.randn(2, 64))
    assert stage_dtypes(G, lambda: G(torch.randn(2, 64))) == [torch.float32] * 4
    assert stage_dtypes(D, lambda: D(x)) == [torch.float32] * 4
    assert x.dtype == D(x).dtype == torch.float32
    none = build("generators", width=8, fp16_stages=[])
    assert {s.cuda_dtype for s in none.stages} == {torch.float32}
    last = build("generators", width=8, fp16_stages=[-1])
    assert [s.cuda_dtype for s in last.stages] == [torch.float32] * 3 + [torch.bfloat16]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="reduced precision applies on CUDA only")
def test_reduced_precision_stages_on_cuda():
    G = build("generators", width=8).cuda()
    D = build("discriminators", width=8).cuda()
    z = torch.randn(2, 64, device="cuda")
    bf16, f32 = torch.bfloat16, torch.float32
    assert stage_dtypes(G, lambda: G(z)) == [f32, bf16, bf16, bf16]
    x = G(z)
    assert x.dtype == f32 and D(x).dtype == f32  # images and logits come back in float32
    assert stage_dtypes(D, lambda: D(x)) == [bf16, bf16, bf16, f32]  # D runs from full resolution down
    D(x).sum().backward()
    assert all(p.grad.dtype == f32 for p in D.parameters())


def test_blocks_start_as_the_identity_with_msr_initialisation():
    torch.manual_seed(0)
    G = build("generators", widths=[64] * 4, blocks=[2, 2, 2, 2])
    D = build("discriminators", widths=[64] * 4, blocks=[2, 2, 2, 2])
    for net in (G, D):
        blocks = [m for m in net.modules() if isinstance(m, ResidualBlock)]
        assert len(blocks) == 8
        for block in blocks:
            assert torch.count_nonzero(block.project.weight) == 0  # the output conv starts at zero
            x = torch.randn(2, 64, 8, 8)
            assert torch.equal(block(x), x)
        assert all(torch.count_nonzero(m.bias) == 0 for m in net.modules() if isinstance(m, BiasedLeakyReLU))
        # MSR: std = gain / √fan_in, gain = √(2 / 1.04) · L^(-1/4) for the blocks' inner layers (L = 8)
        expand = torch.cat([b.expand.weight.flatten() for b in blocks])
        assert abs(expand.std() / (LRELU_GAIN * 8 ** -0.25 / math.sqrt(64)) - 1) < 0.02
        grouped = torch.cat([b.conv.weight.flatten() for b in blocks])  # fan-in: 16 channels per group x 3 x 3
        assert abs(grouped.std() / (LRELU_GAIN * 8 ** -0.25 / math.sqrt(16 * 9)) - 1) < 0.02
    assert abs(G.to_image.weight.std() * math.sqrt(64) - 1) < 0.2


def test_default_layouts_follow_the_paper():
    assert default_widths(3) == [768] * 3  # 16x16
    assert default_widths(4) == [768] * 4  # 32x32: CIFAR-10
    assert default_widths(5) == [768] * 4 + [384]  # 64x64: FFHQ-64
    assert default_widths(7) == [768] * 4 + [384, 192, 96]  # 256x256: FFHQ-256
    with torch.device("meta"):
        G = build("generators", image_size=256)
        D = build("discriminators", image_size=256)
    assert G.layout.cardinalities == (96,) * 4 + (48, 24, 12) == D.layout.cardinalities
    assert G.layout.reduced_stages == D.layout.reduced_stages == {3, 4, 5, 6}  # FFHQ-256's FP16Stages
    assert build("generators", image_size=16, width=8).layout.reduced_stages == {1, 2}


def test_width_caps_widths_and_keeps_the_group_size():
    G = build("generators", image_size=64, width=64)
    assert G.layout.widths == (64,) * 5 and G.layout.cardinalities == (8,) * 5  # groups of 16 channels
    G = build("generators", image_size=32, widths=[32, 24, 16, 8], cardinalities=[8, 6, 4, 2], width=16)
    assert G.layout.widths == (16, 16, 16, 8) and G.layout.cardinalities == (4, 4, 4, 2)
    assert G(torch.randn(1, 64)).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("kwargs,match", [
    ({"image_size": 48}, "image_size must be a power of two >= 4"),
    ({"widths": [64, 64]}, "widths has 2 entries but image_size 32 needs 4 stages"),
    ({"cardinalities": [96, 96, 96]}, "cardinalities has 3 entries"),
    ({"blocks": [1, 1]}, "blocks has 2 entries"),
    ({"blocks": 0}, "at least one block"),
    ({"widths": [24] * 4, "cardinalities": [5] * 4}, r"stage 0 \(4x4\) has width 24 x expansion 2 = 48 .* "
                                                     r"cardinality 5 does not divide"),
    ({"width": 0}, "width must be >= 1"),
    ({"kernel_size": 4}, "kernel_size must be odd"),
    ({"fp16_stages": [4]}, "fp16_stages entry 4 is not a stage"),
    ({"reduced_dtype": "float8"}, "reduced_dtype must be 'bfloat16'"),
    ({"num_classes": 0}, "num_classes must be >= 1"),
    ({"resample_filter": []}, "resample_filter must be low-pass taps"),
])
def test_bad_arguments_say_what_to_fix(kwargs, match):
    for kind in ("generators", "discriminators"):
        with pytest.raises(GankitError, match=match):
            build(kind, **kwargs)


def test_a_training_step_with_the_papers_objective():
    """RpGAN + R1 + R2 (γ = 0.05), one Adam step each, as the official trainer does it."""
    torch.manual_seed(0)
    G = build("generators", image_size=16, width=8, num_classes=3)
    D = build("discriminators", image_size=16, width=8, num_classes=3)
    loss = gankit.registry("losses").build("relativistic")
    regs = [gankit.registry("regularizers").build(n, gamma=0.05) for n in ("r1", "r2")]
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.0, 0.9))
    real, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 0])
    fake = G(torch.randn(4, G.nz), y)  # the official trainer conditions fakes on the real batch's classes
    d, _ = loss.d_loss(D, real, fake.detach(), real_labels=y, fake_labels=y)
    for reg in regs:
        d = d + reg.penalty(D, real, fake.detach(), 0, real_labels=y, fake_labels=y)[0]
    opt_d.zero_grad()
    d.backward()
    opt_d.step()
    g, _ = loss.g_loss(D, fake, fake_labels=y, real=real, real_labels=y)
    opt_g.zero_grad()
    g.backward()
    opt_g.step()
    assert torch.isfinite(d) and torch.isfinite(g)
    assert G.embed.weight.grad.abs().sum() > 0 and all(torch.isfinite(p).all() for p in G.parameters())
