"""Build gankit's StyleGAN2 from the official constructor kwargs, and convert official state dicts.

    from gankit_stylegan2 import official
    G = official.generator(G_kwargs, G_state)        # kwargs as training/networks.py takes them
    D = official.discriminator(D_kwargs, D_state)
    sd = official.convert_state_dict(G_state, "generator")   # official keys -> gankit keys

The kwargs are NVlabs/stylegan2-ada-pytorch's (``training_options.json``'s
``G_kwargs``/``D_kwargs``, with nested ``mapping_kwargs``, ``synthesis_kwargs``,
``block_kwargs``, ``epilogue_kwargs``). State dicts go through :data:`G_KEYS` /
:data:`D_KEYS`, one rule per kind of official key; the official FIR filter
buffers (``*.resample_filter``) are constants that gankit rebuilds from the
kwargs, so they map to None (checked, then dropped). The official
conditioning is a one-hot ``c``; gankit's labels are ``c.argmax(1)``.
This module never unpickles anything: pass tensors, e.g. a state dict saved
with ``torch.save(G.state_dict())`` and read with ``weights_only=True``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from gankit.core.errors import CheckpointError, GankitError
from gankit.nn.resample import setup_filter
from gankit_stylegan2.discriminator import StyleGAN2Discriminator
from gankit_stylegan2.generator import StyleGAN2Generator

_LAYER = r"weight|bias|noise_strength|noise_const|affine\.weight|affine\.bias"
_FILTER = None  # an official resample_filter buffer: rebuilt by gankit, not loaded

# official key (regular expression) -> gankit key (a template with the groups), or None
G_KEYS: list[tuple[str, str | None]] = [
    (r"mapping\.w_avg", r"mapping.w_avg"),
    (r"mapping\.embed\.(weight|bias)", r"mapping.embed.\1"),
    (r"mapping\.fc(\d+)\.(weight|bias)", r"mapping.layers.\1.\2"),
    (r"synthesis\.b(\d+)\.const", r"synthesis.blocks.\1.const"),
    (rf"synthesis\.b(\d+)\.conv0\.({_LAYER})", r"synthesis.blocks.\1.conv_up.\2"),
    (rf"synthesis\.b(\d+)\.conv1\.({_LAYER})", r"synthesis.blocks.\1.conv.\2"),
    (r"synthesis\.b(\d+)\.torgb\.(weight|bias|affine\.weight|affine\.bias)", r"synthesis.blocks.\1.to_rgb.\2"),
    (r"synthesis\.b(\d+)\.skip\.weight", r"synthesis.blocks.\1.skip.weight"),
    (r"synthesis\.b(\d+)(\.conv0|\.conv1|\.skip)?\.resample_filter", _FILTER),
]
D_KEYS: list[tuple[str, str | None]] = [
    (r"b4\.fromrgb\.(weight|bias)", r"head.from_rgb.\1"),
    (r"b4\.(conv|fc|out)\.(weight|bias)", r"head.\1.\2"),
    (r"b(\d+)\.fromrgb\.(weight|bias)", r"blocks.\1.from_rgb.\2"),
    (r"b(\d+)\.conv0\.(weight|bias)", r"blocks.\1.conv.\2"),
    (r"b(\d+)\.conv1\.(weight|bias)", r"blocks.\1.conv_down.\2"),
    (r"b(\d+)\.skip\.weight", r"blocks.\1.skip.weight"),
    (r"mapping\.embed\.(weight|bias)", r"mapping.embed.\1"),
    (r"mapping\.fc(\d+)\.(weight|bias)", r"mapping.layers.\1.\2"),
    (r"b(\d+)(\.fromrgb|\.conv0|\.conv1|\.skip|\.conv)?\.resample_filter", _FILTER),
]
_RULES = {"generator": G_KEYS, "discriminator": D_KEYS}


def _kind(kind: str) -> str:
    kind = {"G": "generator", "D": "discriminator"}.get(kind, kind)
    if kind not in _RULES:
        raise GankitError(f"kind must be 'generator' or 'discriminator', got {kind!r}")
    return kind


def gankit_key(key: str, kind: str) -> str | None:
    """The gankit key of one official key (None for a filter constant); KeyError when no rule matches."""
    for pattern, template in _RULES[_kind(kind)]:
        m = re.fullmatch(pattern, key)
        if m:
            return None if template is None else m.expand(template)
    raise KeyError(key)


def key_map(official_keys: Any, kind: str) -> dict[str, str | None]:
    """{official key: gankit key, or None for the FIR filter constants}; unknown keys are an error."""
    mapping, unknown = {}, []
    for key in official_keys:
        try:
            mapping[key] = gankit_key(key, kind)
        except KeyError:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"{len(unknown)} key(s) of the official {_kind(kind)} state dict have no gankit "
                              f"counterpart: {', '.join(unknown[:8])}{' ...' if len(unknown) > 8 else ''}; "
                              f"is it a StyleGAN2-ADA (training/networks.py) {_kind(kind)}?")
    return mapping


def convert_state_dict(official_sd: Mapping[str, Tensor], kind: str) -> dict[str, Tensor]:
    """An official StyleGAN2-ADA state dict (``G.state_dict()`` or ``D.state_dict()``, also
    of G_ema) with gankit's keys; the FIR filter constants are dropped."""
    return {new: official_sd[old] for old, new in key_map(official_sd, kind).items() if new is not None}


def load_official(module: nn.Module, official_sd: Mapping[str, Tensor], kind: str,
                  resample_filter: Any = (1, 3, 3, 1)) -> None:
    """Load an official state dict into a gankit module; missing, unexpected or misshapen keys are an error."""
    mapping = key_map(official_sd, kind)
    expected = setup_filter(list(resample_filter))
    for old, new in mapping.items():
        t = official_sd[old]
        if new is None and (t.shape != expected.shape or not torch.allclose(t.float().cpu(), expected)):
            raise CheckpointError(f"{old} is not the filter of resample_filter={list(resample_filter)}; "
                                  f"pass the official kwargs the state dict was trained with")
    sd = {new: official_sd[old] for old, new in mapping.items() if new is not None}
    own = module.state_dict()
    problems = [f"missing {k}" for k in own if k not in sd] + [f"unexpected {k}" for k in sd if k not in own]
    problems += [f"{k}: shape {tuple(sd[k].shape)} in the checkpoint, {tuple(own[k].shape)} in the model"
                 for k in sd if k in own and sd[k].shape != own[k].shape]
    if problems:
        raise CheckpointError(f"the official {_kind(kind)} state dict does not fit the kwargs ({len(problems)} "
                              f"problems): " + "; ".join(problems[:8]) + (" ..." if len(problems) > 8 else ""))
    module.load_state_dict(sd, strict=True)


class _Kwargs:
    """Reads official kwargs once each; whatever is left over is unsupported and reported."""

    def __init__(self, what: str, kwargs: Mapping[str, Any]):
        self.what = what
        self.left = {k: v for k, v in kwargs.items() if k != "class_name"}

    def take(self, key: str, default: Any = None) -> Any:
        return self.left.pop(key, default)

    def nested(self, key: str) -> _Kwargs:
        return _Kwargs(f"{self.what}.{key}", dict(self.take(key) or {}))

    def only(self, key: str, allowed: Any) -> None:
        value = self.take(key, allowed)
        if value != allowed:
            raise GankitError(f"official {self.what}.{key}={value!r} is not supported by gankit's StyleGAN2 "
                              f"(only {allowed!r})")

    def done(self) -> None:
        if self.left:
            raise GankitError(f"official {self.what} has argument(s) gankit's StyleGAN2 does not support: "
                              f"{', '.join(sorted(self.left))}")


def generator_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """gankit's StyleGAN2Generator arguments for the official Generator kwargs."""
    top = _Kwargs("G_kwargs", kwargs)
    mapping, synthesis = top.nested("mapping_kwargs"), top.nested("synthesis_kwargs")
    out = dict(nz=top.take("z_dim"), num_classes=top.take("c_dim", 0) or None, w_dim=top.take("w_dim"),
               image_size=top.take("img_resolution"), channels=top.take("img_channels"))
    for official, ours in (("num_layers", "mapping_layers"), ("embed_features", "embed_dim"),
                           ("layer_features", "mapping_dim"), ("lr_multiplier", "mapping_lr"),
                           ("w_avg_beta", "w_avg_beta")):
        if official in mapping.left:
            out[ours] = mapping.take(official)
    mapping.only("activation", "lrelu")
    for name in ("channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture",
                 "resample_filter", "use_noise"):
        if name in synthesis.left:
            out[name] = synthesis.take(name)
    synthesis.take("fp16_channels_last")  # a memory format: no effect on the numbers
    synthesis.only("kernel_size", 3)
    synthesis.only("activation", "lrelu")
    for part in (top, mapping, synthesis):
        part.done()
    return out


def discriminator_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """gankit's StyleGAN2Discriminator arguments for the official Discriminator kwargs."""
    top = _Kwargs("D_kwargs", kwargs)
    block, mapping, epilogue = top.nested("block_kwargs"), top.nested("mapping_kwargs"), top.nested("epilogue_kwargs")
    out = dict(num_classes=top.take("c_dim", 0) or None, image_size=top.take("img_resolution"),
               channels=top.take("img_channels"))
    for name in ("architecture", "channel_base", "channel_max", "num_fp16_res", "conv_clamp", "cmap_dim"):
        if name in top.left:
            out[name] = top.take(name)
    for name in ("resample_filter", "freeze_layers"):
        if name in block.left:
            out[name] = block.take(name)
    block.take("fp16_channels_last")  # a memory format: no effect on the numbers
    block.only("activation", "lrelu")
    if "num_layers" in mapping.left:
        out["mapping_layers"] = mapping.take("num_layers")
    if "mbstd_group_size" in epilogue.left:
        out["mbstd_group_size"] = epilogue.take("mbstd_group_size")
    if "mbstd_num_channels" in epilogue.left:
        out["mbstd_channels"] = epilogue.take("mbstd_num_channels")
    epilogue.only("activation", "lrelu")
    for part in (top, block, mapping, epilogue):
        part.done()
    return out


def generator(kwargs: Mapping[str, Any], state_dict: Mapping[str, Tensor] | None = None,
              **gankit_kwargs: Any) -> StyleGAN2Generator:
    """gankit's generator for the official ``G_kwargs``, with ``state_dict`` (official keys) loaded.
    ``gankit_kwargs`` adds arguments with no official counterpart, e.g. ``style_mixing_prob``."""
    args = generator_kwargs(kwargs) | gankit_kwargs
    G = StyleGAN2Generator(**args)
    if state_dict is not None:
        load_official(G, state_dict, "generator", args.get("resample_filter", (1, 3, 3, 1)))
    return G


def discriminator(kwargs: Mapping[str, Any], state_dict: Mapping[str, Tensor] | None = None,
                  **gankit_kwargs: Any) -> StyleGAN2Discriminator:
    """gankit's discriminator for the official ``D_kwargs``, with ``state_dict`` (official keys) loaded."""
    args = discriminator_kwargs(kwargs) | gankit_kwargs
    D = StyleGAN2Discriminator(**args)
    if state_dict is not None:
        load_official(D, state_dict, "discriminator", args.get("resample_filter", (1, 3, 3, 1)))
    return D
