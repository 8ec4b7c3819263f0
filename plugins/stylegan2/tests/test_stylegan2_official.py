"""The paper configurations and the official key map (gankit_stylegan2.official).

The paper configurations (official train.py cfg_specs 'cifar', 'cifar' with 10
classes, 'paper256') must have the official parameter counts exactly, and
every official state-dict key must map to a gankit key of the same shape (or
to None for the FIR filter constants), covering every gankit key once.
"""

import pytest
import torch

from gankit.core.errors import CheckpointError, GankitError
from gankit_stylegan2 import official
from goldens import load_golden

PAPER = ["config_cifar", "config_cifar_cond10", "config_paper256"]
TINY = ["tiny_orig_16px", "tiny_resnet_32px_cond10", "tiny_skip_16px"]
KINDS = [("generator", "G"), ("discriminator", "D")]



@pytest.fixture(scope="module")
def golden():
    return load_golden("stylegan2ada_official.pt")  # ../shared/parity: fails under CI=true when missing, else skips


def build(kind: str, kwargs: dict):
    return official.generator(kwargs) if kind == "generator" else official.discriminator(kwargs)


def check_covers(module, official_shapes: dict, kind: str) -> None:
    """The map sends every official key to a gankit key of the same shape, hitting each gankit key once."""
    mapping = official.key_map(official_shapes, kind)
    targets = [v for v in mapping.values() if v is not None]
    own = {k: list(v.shape) for k, v in module.state_dict().items()}
    assert len(targets) == len(set(targets))  # one official key per gankit key
    assert set(targets) == set(own)
    shape = {k: list(getattr(v, "shape", v)) for k, v in official_shapes.items()}  # tensors or stored shapes
    assert all(shape[k] == own[v] for k, v in mapping.items() if v is not None)
    assert all(k.endswith("resample_filter") for k, v in mapping.items() if v is None)


@pytest.mark.parametrize("kind,short", KINDS)
@pytest.mark.parametrize("config", PAPER)
def test_paper_configuration_counts_and_shapes(golden, config, kind, short):
    t = golden[config]
    module = build(kind, t[f"{short}_kwargs"])
    assert sum(p.numel() for p in module.parameters()) == t[f"{short}_params"]
    check_covers(module, t[f"{short}_shapes"], kind)


@pytest.mark.parametrize("kind,short", KINDS)
@pytest.mark.parametrize("config", TINY)
def test_key_map_covers_the_tiny_state_dicts(golden, config, kind, short):
    t = golden[config]
    check_covers(build(kind, t[f"{short}_kwargs"]), t[f"{short}_state"], kind)


def test_convert_state_dict_renames_and_drops_the_filters(golden):
    state = golden["tiny_resnet_32px_cond10"]["G_state"]
    converted = official.convert_state_dict(state, "generator")
    assert converted["mapping.layers.1.weight"] is state["mapping.fc1.weight"]
    assert converted["synthesis.blocks.8.conv_up.noise_const"] is state["synthesis.b8.conv0.noise_const"]
    assert converted["synthesis.blocks.32.to_rgb.affine.bias"] is state["synthesis.b32.torgb.affine.bias"]
    assert not any("resample_filter" in k for k in converted)
    d = official.convert_state_dict(golden["tiny_skip_16px"]["D_state"], "D")
    assert {"head.from_rgb.weight", "head.out.bias", "blocks.16.conv_down.weight"} <= set(d)


def test_unknown_missing_and_misshapen_keys_are_clear_errors(golden):
    t = golden["tiny_orig_16px"]
    with pytest.raises(CheckpointError, match="no gankit counterpart: synthesis.b8.extra"):
        official.generator(t["G_kwargs"], {**t["G_state"], "synthesis.b8.extra": torch.zeros(1)})
    partial = {k: v for k, v in t["G_state"].items() if k != "mapping.fc1.bias"}
    with pytest.raises(CheckpointError, match="missing mapping.layers.1.bias"):
        official.generator(t["G_kwargs"], partial)
    narrow = {**t["G_kwargs"], "synthesis_kwargs": {**t["G_kwargs"]["synthesis_kwargs"], "channel_max": 32}}
    with pytest.raises(CheckpointError, match=r"synthesis.blocks.4.const: shape \(64, 4, 4\) in the checkpoint, "
                                              r"\(32, 4, 4\) in the model"):
        official.generator(narrow, t["G_state"])
    with pytest.raises(CheckpointError, match="resample_filter"):
        official.discriminator({**t["D_kwargs"], "block_kwargs": {"resample_filter": [1, 2, 1]}}, t["D_state"])
    with pytest.raises(GankitError, match="kind must be"):
        official.convert_state_dict(t["G_state"], "mapping")


def test_official_kwargs_translate_and_unsupported_ones_are_named(golden):
    kwargs = golden["config_cifar"]["G_kwargs"]
    args = official.generator_kwargs(kwargs)
    assert args == dict(nz=512, num_classes=None, w_dim=512, image_size=32, channels=3, mapping_layers=2,
                        channel_base=32768, channel_max=512, num_fp16_res=0, conv_clamp=256)
    d_args = official.discriminator_kwargs(golden["config_paper256"]["D_kwargs"])
    assert d_args["architecture"] == "resnet" and d_args["mbstd_group_size"] == 8
    with pytest.raises(GankitError, match="synthesis_kwargs has argument.*magic"):
        official.generator_kwargs({**kwargs, "synthesis_kwargs": {"magic": 1}})
    with pytest.raises(GankitError, match="activation='relu' is not supported"):
        official.discriminator_kwargs({**golden["config_cifar"]["D_kwargs"], "epilogue_kwargs": {"activation": "relu"}})
    G = official.generator({**kwargs, "img_resolution": 8, "synthesis_kwargs": {"channel_base": 64, "channel_max": 8}},
                           style_mixing_prob=0.0)  # gankit-only arguments pass through
    assert G.style_mixing_prob == 0.0 and G.image_size == 8
