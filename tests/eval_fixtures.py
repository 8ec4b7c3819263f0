"""Helpers for the evaluation tests: a stand-in Inception weights file, image folders, a tiny extractor.

The weights file has the real layout of torch-fidelity's InceptionV3 (so both
gankit and torch-fidelity load it) but generated values: a seeded random
initialisation whose BatchNorm running statistics are calibrated on a few
images, so that features vary with the images instead of collapsing. It is
never the published file, and it only ever lives in a test's temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn


def digits_uint8(n: int, size: int = 32, seed: int = 0, rgb: bool = True) -> torch.Tensor:
    """``n`` real handwritten digits (scikit-learn's, no download) as uint8 (n, C, size, size)."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    images = load_digits().images[rng.choice(1797, n, replace=False)] / 16.0  # 0..1
    x = torch.nn.functional.interpolate(torch.tensor(images, dtype=torch.float32)[:, None], size=(size, size),
                                        mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    if rgb:  # tint each image so that the three channels differ
        tint = torch.tensor(rng.uniform(0.4, 1.0, (n, 3, 1, 1)), dtype=torch.float32)
        x = (x.float() * tint).round().to(torch.uint8)
    return x


def noisy(images: torch.Tensor, amount: float, seed: int = 1) -> torch.Tensor:
    """Images with seeded uniform noise mixed in (a 'worse generator')."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randint(0, 256, images.shape, generator=g, dtype=torch.uint8)
    return (images.float() * (1 - amount) + noise.float() * amount).round().to(torch.uint8)


def write_folder(folder: Path, images: torch.Tensor) -> Path:
    """One PNG per image (lossless, so files and tensors give the same uint8)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        arr = im.permute(1, 2, 0).numpy()
        Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(folder / f"{i:04d}.png")
    return folder


def make_inception_weights(path: Path, seed: int = 0) -> Path:
    """A calibrated random InceptionV3 state dict in torch-fidelity's layout, saved at ``path``."""
    from gankit.eval.extractors import inception_module

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = inception_module(None)
    calib = torch.cat([digits_uint8(8, seed=seed + 10), noisy(digits_uint8(4, seed=seed + 11), 0.6)])
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for batch in calib.split(6):
            model(batch)
    model.eval()
    with torch.no_grad():
        model.fc.weight.mul_(30)  # peakier class probabilities: an Inception Score well above 1
    torch.save(model.state_dict(), path)
    return path


class TinyExtractor(nn.Module):
    """A small fixed network (a stand-in for a plugin's classifier): uint8 images -> 16 features."""

    calls = 0  # images seen, over all instances (tests count reference passes with it)

    def __init__(self, channels: int = 3):
        super().__init__()
        g = torch.Generator().manual_seed(123)
        self.conv = nn.Conv2d(channels, 8, 3, stride=2)
        self.fc = nn.Linear(8 * 4 * 4, 16)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        TinyExtractor.calls += x.shape[0]
        x = x.float() / 127.5 - 1
        x = torch.nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 4)
        return self.fc(x.flatten(1))


def make_dinov2_weights(path: Path) -> Path:
    """timm's model.safetensors laid out as published (37 x 37 position grid, LayerScale, no head), with seeded
    generated values; LayerScale at 0.5 instead of ~1e-5 so that the CLS token depends on the image."""
    import timm
    from safetensors.torch import save_file

    from gankit.eval import dinov2

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = timm.create_model(dinov2.TIMM_NAME, pretrained=False, img_size=518, num_classes=0)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    del model
    for key in state:
        if key.endswith((".ls1.gamma", ".ls2.gamma")):
            state[key].fill_(0.5)
    save_file(state, str(path))
    return path
