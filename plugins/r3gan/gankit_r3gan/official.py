"""Official R3GAN networks and checkpoints in gankit: kwargs, state-dict keys and a converter.

    G = official.generator(G_kwargs, G_state)        # R3GAN/Networks.py Generator kwargs + state dict
    D = official.discriminator(D_kwargs, D_state)
    state = official.convert_state_dict(official_state, "generator")  # official keys -> gankit keys
    official_state = official.to_official_state_dict(G)              # and back

The kwargs are those of ``R3GAN/Networks.py`` (``NoiseDimension``,
``WidthPerStage``, ...), optionally with the training wrapper's
(``training/networks.py``: ``c_dim``, ``img_resolution``, ``FP16Stages``,
``class_name``); state dicts may carry the wrapper's ``Model.`` prefix.
Tensors are copied unchanged: only the names differ. The official D lists
its stages from full resolution down; gankit lists every network's stages
from 4x4 up, so D's per-stage lists are reversed here.

Key map (s: official stage, k: layer within it, n: number of stages):

    G  MainLayers.s.Layers.0.<transition>          -> stages.s.transition.<...>
       MainLayers.s.Layers.k.<block>    (k >= 1)   -> stages.s.blocks.(k-1).<...>
       AggregationLayer.Layer.weight               -> to_image.weight
    D  MainLayers.s.Layers.k.<block>               -> stages.(n-1-s).blocks.k.<...>
       MainLayers.s.Layers.k.<transition> (last)   -> stages.(n-1-s).transition.<...>
       ExtractionLayer.Layer.weight                -> from_image.weight
    both  EmbeddingLayer.weight                    -> embed.weight

with the parts in :data:`BLOCK_PARTS` and :data:`TRANSITION_PARTS`. Never
unpickle an untrusted ``.pkl`` to get a state dict: a pickle runs code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from torch import Tensor, nn

from gankit.core.errors import GankitError
from gankit_r3gan.models import R3GANDiscriminator, R3GANGenerator

Kind = Literal["generator", "discriminator"]

BLOCK_PARTS = {
    "LinearLayer1.Layer.weight": "expand.weight",  # 1x1 expand
    "NonLinearity1.Bias": "act1.bias",
    "LinearLayer2.Layer.weight": "conv.weight",  # grouped k x k
    "NonLinearity2.Bias": "act2.bias",
    "LinearLayer3.Layer.weight": "project.weight",  # 1x1 project (zero at initialisation)
}
TRANSITION_PARTS = {
    "Basis": "basis",  # G's 4x4 generative basis (C x 4 x 4)
    "Basis.weight": "basis",  # D's 4x4 depthwise basis (C x 1 x 4 x 4)
    "LinearLayer.weight": "linear.weight",  # a basis's linear map
    "Resampler.Kernel": "filter",  # the 4x4 resampling filter (a buffer)
    "LinearLayer.Layer.weight": "project.weight",  # the 1x1 width change of an up/down transition
}
TOP_LEVEL = {
    "generator": {"AggregationLayer.Layer.weight": "to_image.weight", "EmbeddingLayer.weight": "embed.weight"},
    "discriminator": {"ExtractionLayer.Layer.weight": "from_image.weight", "EmbeddingLayer.weight": "embed.weight"},
}
_STAGE_KEY = re.compile(r"MainLayers\.(\d+)\.Layers\.(\d+)\.(.+)")

NETWORK_KWARGS = {"NoiseDimension", "WidthPerStage", "CardinalityPerStage", "BlocksPerStage", "ExpansionFactor",
                  "ConditionDimension", "ConditionEmbeddingDimension", "KernelSize", "ResamplingFilter"}
WRAPPER_KWARGS = {"c_dim", "img_resolution", "FP16Stages", "class_name"}


def _check_kind(kind: str) -> None:
    if kind not in TOP_LEVEL:
        raise GankitError(f"r3gan: kind must be 'generator' or 'discriminator', got {kind!r}")


def key_map(official_keys, kind: Kind) -> dict[str, str]:
    """{official key: gankit key} for the keys of an official ``kind`` state dict (``Model.`` prefix allowed).

    Raises a :class:`GankitError` naming every key that is not an official R3GAN key.
    """
    _check_kind(kind)
    keys = list(official_keys)
    parsed, mapping, unknown = [], {}, []
    for key in keys:
        bare = key[len("Model."):] if key.startswith("Model.") else key
        m = _STAGE_KEY.fullmatch(bare)
        if bare in TOP_LEVEL[kind]:
            mapping[key] = TOP_LEVEL[kind][bare]
        elif m and (m.group(3) in BLOCK_PARTS or m.group(3) in TRANSITION_PARTS):
            parsed.append((key, int(m.group(1)), int(m.group(2)), m.group(3)))
        else:
            unknown.append(key)
    if unknown:
        raise GankitError(f"r3gan: {len(unknown)} key(s) are not in an official R3GAN {kind}'s state dict: "
                          f"{', '.join(unknown[:8])}{' ...' if len(unknown) > 8 else ''}")

    n = 1 + max((s for _, s, _, _ in parsed), default=-1)
    last_layer: dict[int, int] = {}
    for _, s, k, _ in parsed:
        last_layer[s] = max(last_layer.get(s, 0), k)
    for key, s, k, part in parsed:
        is_block = part in BLOCK_PARTS
        if kind == "generator":  # transition first, then blocks
            stage, block, transition_here = s, k - 1, k == 0
        else:  # blocks first, then the transition; stages from full resolution down
            stage, block, transition_here = n - 1 - s, k, k == last_layer[s]
        if is_block == transition_here:
            where = "first" if kind == "generator" else "last"
            raise GankitError(f"r3gan: key {key!r}: an official {kind}'s transition is the {where} layer of a stage "
                              f"and its other layers are residual blocks, but this key says otherwise")
        mapping[key] = (f"stages.{stage}.blocks.{block}.{BLOCK_PARTS[part]}" if is_block
                        else f"stages.{stage}.transition.{TRANSITION_PARTS[part]}")
    seen: dict[str, str] = {}
    for key, ours in mapping.items():
        if ours in seen:
            raise GankitError(f"r3gan: keys {seen[ours]!r} and {key!r} are the same tensor ({ours}); "
                              f"a state dict has only one of them")
        seen[ours] = key
    return mapping


def convert_state_dict(official_sd: Mapping[str, Tensor], kind: Kind) -> dict[str, Tensor]:
    """An official R3GAN generator's or discriminator's state dict with gankit's keys (same tensors)."""
    mapping = key_map(official_sd.keys(), kind)
    return {mapping[k]: v for k, v in official_sd.items()}


def to_official_state_dict(model: R3GANGenerator | R3GANDiscriminator) -> dict[str, Tensor]:
    """A gankit R3GAN network's state dict with the official keys (the inverse of :func:`convert_state_dict`)."""
    kind = "generator" if isinstance(model, R3GANGenerator) else "discriminator"
    top = {g: o for o, g in TOP_LEVEL[kind].items()}
    block_parts = {g: o for o, g in BLOCK_PARTS.items()}
    transition_parts = {g: o for o, g in TRANSITION_PARTS.items()}
    transition_parts["basis"] = "Basis" if kind == "generator" else "Basis.weight"
    n = len(model.stages)
    out = {}
    for key, value in model.state_dict().items():
        if key in top:
            out[top[key]] = value
            continue
        _, i, role, rest = key.split(".", 3)  # stages.<i>.<blocks|transition>.<...>
        i = int(i)
        s = i if kind == "generator" else n - 1 - i
        if role == "blocks":
            b, part = rest.split(".", 1)
            layer, name = (int(b) + 1 if kind == "generator" else int(b)), block_parts[part]
        else:
            layer, name = (0 if kind == "generator" else len(model.stages[i].blocks)), transition_parts[rest]
        out[f"MainLayers.{s}.Layers.{layer}.{name}"] = value
    return out


def load_official_state_dict(model: nn.Module, official_sd: Mapping[str, Tensor], kind: Kind) -> nn.Module:
    """Load an official state dict into a gankit R3GAN ``model``; every key and shape must match."""
    mapping = key_map(official_sd.keys(), kind)
    state = {mapping[k]: v for k, v in official_sd.items()}
    official_name = {g: o for o, g in mapping.items()}
    expected = model.state_dict()
    wanted = {g: o for o, g in key_map(to_official_state_dict(model).keys(), kind).items()}
    missing = [f"{wanted[k]} (as {k})" for k in expected if k not in state]
    extra = [f"{official_name[k]} (as {k})" for k in state if k not in expected]
    shapes = [f"{official_name[k]} (as {k}): shape {tuple(state[k].shape)}, the network's {tuple(v.shape)}"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems = ([f"missing (the official state dict lacks them): {', '.join(missing)}"] if missing else []) + \
               ([f"unexpected (this network has no such layer): {', '.join(extra)}"] if extra else []) + shapes
    if problems:
        raise GankitError(f"r3gan: the official {kind} state dict does not fit the network its kwargs "
                          f"describe:\n  " + "\n  ".join(problems))
    model.load_state_dict(state, strict=True)
    return model


def gankit_kwargs(official: Mapping[str, Any], kind: Kind) -> dict[str, Any]:
    """The gankit constructor arguments equal to official ``R3GAN/Networks.py`` (+ wrapper) kwargs."""
    _check_kind(kind)
    allowed = (NETWORK_KWARGS - ({"NoiseDimension"} if kind == "discriminator" else set())) | WRAPPER_KWARGS
    unknown = sorted(set(official) - allowed)
    required = {"WidthPerStage", "CardinalityPerStage", "BlocksPerStage", "ExpansionFactor"}
    required |= {"NoiseDimension"} if kind == "generator" else set()
    missing = sorted(required - set(official))
    if unknown or missing:
        problems = ([f"unknown {', '.join(unknown)}"] if unknown else []) + \
                   ([f"missing {', '.join(missing)}"] if missing else [])
        raise GankitError(f"r3gan: official {kind} kwargs: " + "; ".join(problems))

    def order(values):  # gankit lists stages from 4x4 up; the official D from full resolution down
        values = [int(v) for v in values]
        return values if kind == "generator" else values[::-1]

    n = len(official["WidthPerStage"])
    image_size = 4 * 2 ** (n - 1)
    if official.get("img_resolution", image_size) != image_size:
        raise GankitError(f"r3gan: official {kind} kwargs have {n} stages (image size {image_size}) but "
                          f"img_resolution {official['img_resolution']}")
    classes = official.get("ConditionDimension")
    if official.get("c_dim"):
        classes = int(official["c_dim"])  # the wrapper's way of setting ConditionDimension
    out = dict(image_size=image_size, channels=3, widths=order(official["WidthPerStage"]),
               cardinalities=order(official["CardinalityPerStage"]), blocks=order(official["BlocksPerStage"]),
               expansion=int(official["ExpansionFactor"]), kernel_size=int(official.get("KernelSize", 3)),
               resample_filter=tuple(official.get("ResamplingFilter", (1, 2, 1))),
               num_classes=None if classes is None else int(classes))
    embed = int(official.get("ConditionEmbeddingDimension", 0))
    if kind == "generator":
        out["nz"] = int(official["NoiseDimension"])
        if classes is None and embed:
            raise GankitError("r3gan: official generator kwargs set ConditionEmbeddingDimension without "
                              "ConditionDimension; the official network cannot run that way")
    if classes is not None:
        out["embed_dim"] = embed
    # R3GAN/Networks.py runs everything in float32; the training wrapper's FP16Stages pick bfloat16 stages.
    stages = [int(s) % n for s in official.get("FP16Stages", [])]
    out["fp16_stages"] = stages if kind == "generator" else [n - 1 - s for s in stages]
    out["reduced_dtype"] = "bfloat16"
    return out


def generator(kwargs: Mapping[str, Any], state_dict: Mapping[str, Tensor] | None = None) -> R3GANGenerator:
    """A gankit R3GAN generator from official kwargs, with an official state dict loaded if given."""
    G = R3GANGenerator(**gankit_kwargs(kwargs, "generator"))
    return G if state_dict is None else load_official_state_dict(G, state_dict, "generator")


def discriminator(kwargs: Mapping[str, Any], state_dict: Mapping[str, Tensor] | None = None) -> R3GANDiscriminator:
    """A gankit R3GAN discriminator from official kwargs, with an official state dict loaded if given."""
    D = R3GANDiscriminator(**gankit_kwargs(kwargs, "discriminator"))
    return D if state_dict is None else load_official_state_dict(D, state_dict, "discriminator")
