"""The paper's presets: exact parameter counts, every state-dict key and shape through the key map,
and gankit's own defaults giving the same networks. Built on the meta device (no memory, no time)."""

import pytest
import torch

import gankit
from gankit.core.errors import GankitError
from gankit_r3gan import official
from goldens import load_golden

PRESETS = ["preset_CIFAR10", "preset_CIFAR10_cond10", "preset_FFHQ-64"]
# gankit's defaults that are each preset: the registry's generator/discriminator arguments
NATIVE = {"preset_CIFAR10": {"image_size": 32}, "preset_CIFAR10_cond10": {"image_size": 32, "num_classes": 10},
          "preset_FFHQ-64": {"image_size": 64}}



@pytest.fixture(scope="module")
def golden():
    return load_golden("r3gan_official.pt")  # ../shared/parity: fails under CI=true when missing, else skips


def count(module):
    return sum(p.numel() for p in module.parameters())


def check_keys(module, official_shapes, kind):
    """The key map takes every official key to a gankit key, covers every gankit key, and the shapes agree."""
    mapping = official.key_map(official_shapes, kind)
    ours = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    assert sorted(mapping.values()) == sorted(ours)  # one to one, nothing left over on either side
    assert {mapping[k]: tuple(s) for k, s in official_shapes.items()} == ours


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_counts_and_keys_match_the_official(golden, preset):
    p = golden[preset]
    with torch.device("meta"):
        G = official.generator(p["G_kwargs"])
        D = official.discriminator(p["D_kwargs"])
    assert (count(G), count(D)) == (p["G_params"], p["D_params"])
    check_keys(G, p["G_shapes"], "generator")
    check_keys(D, p["D_shapes"], "discriminator")


@pytest.mark.parametrize("preset", PRESETS)
def test_gankit_defaults_are_the_presets(golden, preset):
    p = golden[preset]
    with torch.device("meta"):
        G = gankit.registry("generators").build("r3gan", **NATIVE[preset])
        D = gankit.registry("discriminators").build("r3gan", **NATIVE[preset])
    assert (count(G), count(D)) == (p["G_params"], p["D_params"])
    check_keys(G, p["G_shapes"], "generator")
    check_keys(D, p["D_shapes"], "discriminator")
    # the presets' training wrapper runs these stages in bfloat16 (FP16Stages), mirrored in D
    n = len(p["G_kwargs"]["WidthPerStage"])
    assert G.layout.reduced_stages == D.layout.reduced_stages == set(range(1, n))


def test_wrapper_kwargs_and_prefix_are_understood():
    """training/networks.py's kwargs (c_dim, img_resolution, FP16Stages) and its ``Model.`` prefix."""
    G_kwargs = dict(NoiseDimension=8, WidthPerStage=[16, 16, 8], CardinalityPerStage=[2, 2, 1],
                    BlocksPerStage=[1, 1, 1], ExpansionFactor=2, c_dim=3, ConditionEmbeddingDimension=4,
                    img_resolution=16, FP16Stages=[-1], class_name="training.networks.Generator")
    D_kwargs = dict(WidthPerStage=[8, 16, 16], CardinalityPerStage=[1, 2, 2], BlocksPerStage=[1, 1, 1],
                    ExpansionFactor=2, c_dim=3, ConditionEmbeddingDimension=16, img_resolution=16,
                    FP16Stages=[0], class_name="training.networks.Discriminator")
    G, D = official.generator(G_kwargs), official.discriminator(D_kwargs)
    assert G.num_classes == D.num_classes == 3 and G.embed.weight.shape == (4, 3)
    assert G.layout.reduced_stages == D.layout.reduced_stages == {2}  # the full-resolution stage in both
    assert D.layout.widths == (16, 16, 8)  # gankit lists D's stages from 4x4 up
    prefixed = {"Model." + k: v for k, v in official.to_official_state_dict(D).items()}
    again = official.discriminator(D_kwargs, prefixed)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), D.state_dict().values()))


@pytest.mark.parametrize("name", ["tiny_uncond", "tiny_cond10"])
def test_official_state_dicts_round_trip(golden, name):
    t = golden[name]
    for kind, build, state in [("generator", official.generator, t["G_state"]),
                               ("discriminator", official.discriminator, t["D_state"])]:
        back = official.to_official_state_dict(build(t[kind[0].upper() + "_kwargs"], state))
        assert sorted(back) == sorted(state) and all(torch.equal(back[k], v) for k, v in state.items())


def test_key_map_errors_name_the_keys():
    with pytest.raises(GankitError, match="not in an official R3GAN generator's state dict: Mapping.weight"):
        official.convert_state_dict({"Mapping.weight": torch.zeros(1)}, "generator")
    kwargs = dict(NoiseDimension=8, WidthPerStage=[8, 8], CardinalityPerStage=[1, 1], BlocksPerStage=[1, 1],
                  ExpansionFactor=2)
    G = official.generator(kwargs)
    official_sd = {"MainLayers.0.Layers.0.Basis": G.stages[0].transition.basis.detach()}
    missing = r"missing .*MainLayers.0.Layers.0.LinearLayer.weight \(as stages.0.transition.linear.weight\)"
    with pytest.raises(GankitError, match=missing):
        official.generator(kwargs, official_sd)
    shape = r"MainLayers.0.Layers.0.Basis \(as stages.0.transition.basis\): shape \(8, 8\), the network's \(8, 4, 4\)"
    with pytest.raises(GankitError, match=shape):
        official.generator(kwargs, {**official.to_official_state_dict(G),
                                    "MainLayers.0.Layers.0.Basis": torch.zeros(8, 8)})
    with pytest.raises(GankitError, match="transition is the first layer"):
        official.convert_state_dict({"MainLayers.0.Layers.1.Basis": torch.zeros(1)}, "generator")
    with pytest.raises(GankitError, match="unknown NoiseDimension, Widths; missing WidthPerStage"):
        official.discriminator({**{k: v for k, v in kwargs.items() if k != "WidthPerStage"}, "Widths": [8]})
