"""gankit's side of the StyleGAN2 port: registration, shapes, labels, modes, noise, truncation, mbstd, precision.

Numerical equality with the official networks is tested in test_stylegan2_parity.py.
"""

import copy

import pytest
import torch

import gankit
from gankit.core.errors import GankitError
from gankit.core.plugins import get_host
from gankit.recipe.components import check_arguments
from gankit_stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from gankit_stylegan2 import discriminator as disc_module
from gankit_stylegan2 import synthesis as synth_module
from gankit_stylegan2.discriminator import MinibatchStd, largest_divisor

TINY = dict(channel_base=256, channel_max=8)  # 8 channels at most: a fast model at any size
Z = 32


def tiny_G(**kw) -> StyleGAN2Generator:
    return StyleGAN2Generator(**{"nz": Z, "w_dim": 16, "image_size": 16, "mapping_layers": 2, **TINY, **kw})


def tiny_D(**kw) -> StyleGAN2Discriminator:
    return StyleGAN2Discriminator(**{"image_size": 16, "mapping_layers": 2, **TINY, **kw})


def with_noise(G: StyleGAN2Generator) -> StyleGAN2Generator:
    """Noise strengths are 0 at initialisation; make the noise visible."""
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    return G


def test_registered_through_the_entry_point():
    info = get_host().plugins["stylegan2"]
    assert "gankit-stylegan2" in info.origin
    assert info.registered == {"generators": ["stylegan2"], "discriminators": ["stylegan2"],
                               "regularizers": ["path_length"]}


@pytest.mark.parametrize("image_size,channels", [(32, 1), (32, 3), (64, 3)])
def test_registry_builds_tiny_models_with_the_official_defaults(image_size, channels):
    G = gankit.registry("generators").build("stylegan2", image_size=image_size, channels=channels, **TINY)
    D = gankit.registry("discriminators").build("stylegan2", image_size=image_size, channels=channels, **TINY)
    assert (G.nz, G.w_dim, G.num_classes, G.style_mixing_prob) == (512, 512, None, 0.9)
    assert G.num_ws == 2 * (image_size.bit_length() - 1) - 2 and len(G.mapping.layers) == 8
    assert D.num_classes is None and [b.skip is not None for b in D.blocks.values()] == [True] * len(D.blocks)
    img = G(torch.randn(3, 512))
    assert img.shape == (3, channels, image_size, image_size) and img.dtype == torch.float32
    logits = D(img)
    assert logits.shape == (3,)
    logits.sum().backward()
    assert all(p.grad is not None for p in G.parameters())
    assert sum(p.numel() for p in D.parameters()) < 10_000


def test_recipe_arguments_type_check_against_the_signature():
    problems, args = check_arguments("generator", "stylegan2", StyleGAN2Generator,
                                     {"conv_clamp": "256", "architecture": "resnet", "resample_filter": [1, 2, 1]})
    assert problems == []
    assert args == {"conv_clamp": 256.0, "architecture": "resnet", "resample_filter": (1.0, 2.0, 1.0)}
    problems, _ = check_arguments("discriminator", "stylegan2", StyleGAN2Discriminator,
                                  {"architecture": "res", "mbstd_groupsize": 4})
    assert "architecture" in problems[0] and "did you mean 'discriminator.mbstd_group_size'" in problems[1]


@pytest.mark.parametrize("kwargs,message", [
    (dict(image_size=48), "image_size must be a power of two >= 4"),
    (dict(image_size=2), "image_size must be a power of two >= 4"),
    (dict(channel_base=8), r"channel_base \(8\) must be at least image_size \(16\)"),
    (dict(architecture="residual"), "architecture must be one of"),
    (dict(num_fp16_res=-1), "num_fp16_res must be an integer >= 0"),
    (dict(fp16_dtype="half"), "fp16_dtype must be 'float16' or 'bfloat16'"),
    (dict(conv_clamp=0), "conv_clamp must be a positive number or null"),
    (dict(num_classes=-3), "num_classes must be an integer >= 1"),
])
def test_bad_arguments_name_the_argument(kwargs, message):
    for build in (tiny_G, tiny_D):
        with pytest.raises(GankitError, match=message):
            build(**kwargs)
    with pytest.raises(GankitError, match="style_mixing_prob must be in"):
        tiny_G(style_mixing_prob=1.5)
    with pytest.raises(GankitError, match=r"mbstd_channels \(3\) must divide the 4x4 channels \(8"):
        tiny_D(mbstd_channels=3)


@pytest.mark.parametrize("architecture,rgb_blocks", [("skip", 3), ("orig", 1), ("resnet", 1)])
def test_generator_architectures(architecture, rgb_blocks):
    G = tiny_G(architecture=architecture).eval()
    assert sum(b.to_rgb is not None for b in G.synthesis.blocks.values()) == rgb_blocks
    assert sum(b.skip is not None for b in G.synthesis.blocks.values()) == (2 if architecture == "resnet" else 0)
    assert G.num_ws == 6 and list(G.synthesis.blocks) == ["4", "8", "16"]
    assert G(torch.randn(2, Z)).shape == (2, 3, 16, 16)
    assert not any("resample_filter" in k for k in G.state_dict())  # constants, rebuilt from the arguments


def test_conditional_models_take_int_labels_or_one_hot_vectors():
    torch.manual_seed(0)
    G, D = tiny_G(num_classes=4).eval(), tiny_D(num_classes=4)
    z, labels = torch.randn(4, Z), torch.tensor([0, 1, 2, 3])
    img = G(z, labels)
    assert G.num_classes == D.num_classes == 4 and D.cmap_dim == 8
    assert torch.equal(img, G(z, torch.nn.functional.one_hot(labels, 4).float()))
    assert not torch.allclose(img, G(z, labels.flip(0)))
    assert torch.equal(G(z), img)  # no labels: the classes in turn, 0, 1, 2, 3
    assert D(img, labels).shape == (4,) and D(img).shape == (4,)  # without labels: the mean class projection
    assert not torch.allclose(D(img, labels), D(img, labels.flip(0)))
    assert tiny_G(num_classes=0).num_classes is None  # 0 = unconditional, as the official c_dim


def test_w_avg_moves_in_training_mode_only():
    torch.manual_seed(0)
    G = tiny_G(style_mixing_prob=1.0)
    z = torch.randn(8, Z)
    G.eval()
    G(z)
    G.mapping(z)
    assert torch.equal(G.w_avg, torch.zeros(16))
    G.train()
    with torch.no_grad():
        w = G.mapping.eval()(z)[:, 0]  # eval: w without touching w_avg
    G.train()
    G(z)  # style mixing maps a second z, which must not move w_avg
    assert torch.allclose(G.w_avg, w.mean(0).lerp(torch.zeros(16), 0.995))
    before = G.w_avg.clone()
    G.mapping(z, update_w_avg=False)
    assert torch.equal(G.w_avg, before)


def test_style_mixing_changes_outputs_only_in_training_mode():
    torch.manual_seed(0)
    G = tiny_G(style_mixing_prob=1.0)
    unmixed = copy.deepcopy(G)
    unmixed.style_mixing_prob = 0.0
    z = torch.randn(4, Z)

    def run(model, seed=1):
        torch.manual_seed(seed)
        return model(z, noise_mode="const")

    assert not torch.allclose(run(G), run(unmixed))  # training mode: ws from a cutoff on come from another z
    assert torch.equal(run(G), run(G))  # every draw from the global RNG
    G.eval(), unmixed.eval()
    assert torch.equal(run(G, 1), run(unmixed, 2))
    assert torch.equal(run(G), G.synthesis(G.mapping(z), noise_mode="const"))


def test_style_mixing_cutoff_keeps_the_first_ws():
    """The mixed ws equal the first z's up to the cutoff and the second z's after it."""
    G = tiny_G(style_mixing_prob=1.0)
    seen = {}
    G.synthesis.register_forward_pre_hook(lambda m, args: seen.setdefault("ws", args[0].detach().clone()))
    z = torch.randn(4, Z)
    torch.manual_seed(3)
    G(z)
    ws = seen["ws"]
    with torch.no_grad():
        own = G.mapping.eval()(z)
    first = (ws == own).all(dim=2).all(dim=0)  # per layer: still the first z's?
    cutoff = int(first.float().argmin())
    assert 1 <= cutoff < G.num_ws and first[:cutoff].all() and not first[cutoff:].any()


def test_noise_modes():
    G = with_noise(tiny_G()).eval()
    ws = G.mapping(torch.randn(2, Z))
    const, none = G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="none")
    assert torch.equal(const, G.synthesis(ws, noise_mode="const"))
    assert not torch.allclose(const, none)
    torch.manual_seed(0)
    random = G.synthesis(ws)
    assert not torch.allclose(random, G.synthesis(ws))
    torch.manual_seed(0)
    assert torch.equal(random, G.synthesis(ws))
    with pytest.raises(ValueError, match="noise_mode must be one of"):
        G.synthesis(ws, noise_mode="fixed")
    assert not any(n.endswith("noise_const") for n in dict(tiny_G(use_noise=False).named_buffers()))


def test_truncation():
    G = tiny_G().eval()
    with torch.no_grad():
        G.mapping.w_avg.normal_()
    z = torch.randn(3, Z)
    ws = G.mapping(z)
    assert torch.equal(G.truncate(ws, 1.0), ws)
    assert torch.allclose(G.truncate(ws, 0.0), G.w_avg.expand_as(ws))
    assert torch.allclose(G.truncate(ws, 0.7), G.w_avg + 0.7 * (ws - G.w_avg), atol=1e-6)
    cut = G.truncate(ws, 0.5, cutoff=2)
    assert torch.equal(cut[:, 2:], ws[:, 2:]) and torch.equal(cut[:, :2], G.truncate(ws, 0.5)[:, :2])
    assert torch.equal(G.mapping(z, truncation_psi=0.5, truncation_cutoff=2), cut)
    expected = G.synthesis(G.truncate(ws, 0.5), noise_mode="const")
    assert torch.equal(G(z, truncation_psi=0.5, noise_mode="const"), expected)


def test_minibatch_std_handles_any_batch_size():
    assert [largest_divisor(n, 4) for n in (1, 2, 3, 4, 5, 6, 7, 8, 9)] == [1, 2, 3, 4, 1, 3, 1, 4, 3]
    x = torch.randn(6, 8, 4, 4)
    assert torch.equal(MinibatchStd(4)(x), MinibatchStd(3)(x))  # 6 images: groups of 3
    assert torch.equal(MinibatchStd(None)(x), MinibatchStd(6)(x))
    y = MinibatchStd(2, num_channels=2)(x)
    assert y.shape == (6, 10, 4, 4) and torch.equal(y[:, :8], x)
    D = tiny_D()
    for n in (1, 3, 5, 7):
        assert D(torch.randn(n, 3, 16, 16)).shape == (n,)


@pytest.mark.parametrize("fp16_dtype", ["float16", "bfloat16"])
def test_reduced_precision_layers_stay_float32_on_the_cpu(fp16_dtype, monkeypatch):
    torch.manual_seed(0)
    G = tiny_G(num_fp16_res=2, fp16_dtype=fp16_dtype, conv_clamp=256).eval()
    D = tiny_D(num_fp16_res=2, fp16_dtype=fp16_dtype, conv_clamp=256)
    full_G, full_D = tiny_G(conv_clamp=256).eval(), tiny_D(conv_clamp=256)
    full_G.load_state_dict(G.state_dict())
    full_D.load_state_dict(D.state_dict())
    assert [b.reduced_precision for b in G.synthesis.blocks.values()] == [False, True, True]
    assert [b.reduced_precision for b in D.blocks.values()] == [True, True]
    dtypes = set()
    for m in [*G.modules(), *D.modules()]:
        m.register_forward_hook(lambda m, i, out: dtypes.add(out.dtype if torch.is_tensor(out) else out[0].dtype))
    z = torch.randn(2, Z)
    img = G(z, noise_mode="const").detach()
    assert torch.equal(img, full_G(z, noise_mode="const")) and torch.equal(D(img), full_D(img))
    assert dtypes == {torch.float32}

    # The reduced-precision path itself, forced on the CPU: it runs and stays close to float32.
    dtype = getattr(torch, fp16_dtype)
    forced = lambda reduced, d, device, force_fp32: d if reduced and not force_fp32 else torch.float32  # noqa: E731
    monkeypatch.setattr(synth_module, "compute_dtype", forced)
    monkeypatch.setattr(disc_module.checks, "compute_dtype", forced)
    dtypes.clear()
    low = G(z, noise_mode="const").detach()
    logits = D(low)
    assert dtype in dtypes and low.dtype == logits.dtype == torch.float32
    assert float((low - img).abs().max() / img.abs().max()) < 0.05
    assert torch.equal(G.synthesis(G.mapping(z), noise_mode="const", force_fp32=True), img)


def test_freeze_layers_turns_the_first_layers_into_buffers():
    D, frozen = tiny_D(), tiny_D(freeze_layers=3)  # 16x16 block: fromRGB, conv, conv_down (and skip: trained)
    frozen_names = {n for n, _ in frozen.named_buffers()}
    assert {"blocks.16.from_rgb.weight", "blocks.16.conv.weight", "blocks.16.conv_down.bias"} <= frozen_names
    assert "blocks.16.skip.weight" in dict(frozen.named_parameters())
    assert set(frozen.state_dict()) == set(D.state_dict())
    frozen.load_state_dict(D.state_dict())
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(frozen(x), D(x))
