"""FD-DINOv2: the Fréchet distance in DINOv2 ViT-L/14 space (Stein et al., NeurIPS 2023).

The same statistics as FID (torchmetrics' ``FrechetInceptionDistance`` with the extracted
features handed in as ``feature=``, float64 sums, n - 1 covariances, and the same bootstrap
interval), on the 1024-d CLS token of DINOv2 ViT-L/14 after dgm-eval's preprocessing
(:mod:`gankit.eval.dinov2`). Every metric that reads ``dinov2_vitl14`` shares one pass of the
images through it: with ``eval.feature_extractor: dinov2_vitl14``, FID's, KID's and PRDC's features
are this one's too. Lower is better.
"""

from __future__ import annotations

from gankit.core.registry import component
from gankit.eval.metrics.fid import Frechet


@component("metrics", "fd_dinov2")
class FDDINOv2(Frechet):
    """Fréchet distance in DINOv2 ViT-L/14 space (dgm-eval's preprocessing), with its 95% interval; lower is better."""

    value_name = "fd_dinov2"
    extractor = "dinov2_vitl14"
