"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018), x 1e3.

Needs no network and no weights (:mod:`gankit.eval.swd`), so an offline run
still measures something. It reads the uint8 images themselves.
"""

from __future__ import annotations

import torch

from gankit.core.registry import component
from gankit.eval import swd
from gankit.eval.errors import EvalError
from gankit.eval.metrics.base import Metric, Value
from gankit.eval.rng import torch_generator


@component("metrics", "swd")
class SWD(Metric):
    """Sliced Wasserstein distance between patch descriptors of real and generated images; lower is better."""

    uses = "images"

    def __init__(self):
        self.real: list[torch.Tensor] = []
        self.fake: list[torch.Tensor] = []
        self._real_descriptors: tuple | None = None  # (seed, count, descriptors, image size): reused while they match

    def update(self, x, real):
        (self.real if real else self.fake).append(x)

    def _descriptors(self, images: list[torch.Tensor], seed: int, stream: str):
        n = sum(b.shape[0] for b in images)
        d = swd.Descriptors(n, torch_generator(seed, stream))
        for batch in images:
            d.add(batch)
        return d.finish(), d.size

    def compute(self, seed):
        if not self.real or not self.fake:
            raise EvalError("swd needs real and generated images")
        n_real = sum(b.shape[0] for b in self.real)
        if self._real_descriptors is None or self._real_descriptors[:2] != (seed, n_real):
            real, size = self._descriptors(self.real, seed, "swd_real")
            self._real_descriptors = (seed, n_real, real, size)
        _, _, real, real_size = self._real_descriptors
        fake, fake_size = self._descriptors(self.fake, seed, "swd_fake")
        if fake_size != real_size:
            raise EvalError(f"swd: generated images are {fake_size}px, reference images {real_size}px; SWD compares "
                            "images of one size")
        value, levels = swd.swd(real, fake, torch_generator(seed, "swd"))
        sizes = swd.resolutions(real_size)
        return [Value("swd", value, None, {"swd_levels": {str(s): v for s, v in zip(sizes, levels)},
                                           "implementation": "gankit swd", "input_resolution": real_size})]

    def reset_fake(self):
        self.fake = []

    def provenance(self):
        # No network and no weights: its descriptors are 7x7 patches of a Laplacian pyramid, at native resolution.
        return {"feature_extractor": "laplacian_pyramid_patches", "weights_path": None, "weights_sha256": None,
                "weights_published": None, "input_resolution": None, "resize": "none (native resolution)",
                "antialias": None}
