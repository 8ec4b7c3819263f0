"""The ``dinov2_vitl14`` feature extractor: DINOv2 ViT-L/14 as dgm-eval uses it for FD-DINOv2.

Stein et al. (NeurIPS 2023, "Exposing flaws of generative model evaluation metrics") measure the
Fréchet distance in this network's space with their code, dgm-eval (layer6ai-labs/dgm-eval). Every
choice below was read in its code (``dgm_eval/models/dinov2.py``, ``dataloaders.py``,
``representations.py``, ``__main__.py``, ``metrics/fd.py``) and in the DINOv2 model it loads
(facebookresearch/dinov2 ``dinov2/models/vision_transformer.py``):

- **Images**: dgm-eval reads files with PIL and ``convert("RGB")``; gankit's images are uint8 too
  (generated ones quantised, :mod:`gankit.eval.images`) and a grey image is replicated to RGB.
- **Resize**: ``torchvision.transforms.Resize((224, 224), InterpolationMode.BICUBIC)`` on the PIL
  image (its default, ``--clean_resize`` off), i.e. PIL's bicubic (Keys, a = -0.5) to 224 x 224
  regardless of aspect, antialiased (PIL widens the filter when it shrinks), rounded to uint8 as
  PIL does. gankit makes the same call on a PIL image, so its inputs are dgm-eval's byte for byte.
  (torch's ``interpolate(bicubic, antialias=True)`` on floats is not: on noise images it differs by
  up to 22 grey levels, because PIL rounds to uint8 between its horizontal and vertical passes.)
- **Scale and normalisation**: ``ToTensor`` (/255), then ``Normalize`` with ImageNet's mean
  (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).
- **Network**: ``torch.hub.load('facebookresearch/dinov2', 'dinov2_vitl14')`` (dgm-eval's default
  ``--arch``), whose ``forward`` returns ``head(x_norm_clstoken)`` with ``head = Identity``: the
  **CLS token after the final LayerNorm**, 1024-d, not L2-normalised (``normalized=False``). gankit
  builds timm's ``vit_large_patch14_dinov2`` (the same layers: LayerNorm eps 1e-6, LayerScale,
  GELU MLP), whose ``forward`` with ``num_classes=0`` returns the same token.
- **Position embedding at 224**: the weights hold a 37 x 37 grid (518 px). DINOv2 resizes it on
  every forward with ``interpolate(mode="bicubic", scale_factor=(16.1 / 37, 16.1 / 37))`` (the
  +0.1 offset against a floating-point edge case, no antialiasing); timm's own resampling would use
  ``size=16`` with antialiasing and give other embeddings. gankit makes DINOv2's call once, when
  it loads the weights (:func:`dinov2_pos_embed`), and builds timm's model for 224 px.
- **Distance**: dgm-eval fits ``np.cov`` (n - 1) and the mean in float64 and takes scipy's
  ``sqrtm``; gankit hands the features to torchmetrics' ``FrechetInceptionDistance`` (float64 sums,
  n - 1), which agrees to rounding (``tests/test_eval_dinov2.py`` checks it against scipy).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gankit.core.registry import component

RESOLUTION = 224
PATCH = 14
GRID = 37  # the published weights' position grid (518 / 14)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
RESIZE = "PIL bicubic to 224x224 (torchvision Resize on a PIL image, as dgm-eval), rounded to uint8"
PREPROCESSING = "RGB, /255, ImageNet mean/std; CLS token of the final LayerNorm (dgm-eval)"
TIMM_NAME = "vit_large_patch14_dinov2"


def dinov2_pos_embed(pos_embed: Tensor, size: int = RESOLUTION) -> Tensor:
    """The (1, 1 + g², d) position embedding for ``size`` px, resized from 37 x 37 as DINOv2's forward does."""
    grid = size // PATCH
    n = pos_embed.shape[1] - 1
    side = int(math.sqrt(n))
    if side == grid:
        return pos_embed
    cls, patches = pos_embed[:, :1].float(), pos_embed[:, 1:].float()
    dim = pos_embed.shape[-1]
    scale = float((grid + 0.1) / math.sqrt(n))
    patches = nn.functional.interpolate(patches.reshape(1, side, side, dim).permute(0, 3, 1, 2),
                                        scale_factor=(scale, scale), mode="bicubic")
    patches = patches.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat([cls, patches], dim=1).to(pos_embed.dtype)


def preprocess(images: Tensor) -> Tensor:
    """uint8 (N, 3, H, W) -> the network's float input (N, 3, 224, 224), as dgm-eval's transform."""
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import pil_to_tensor, resize

    resized = []
    for image in images.cpu():
        pil = Image.fromarray(image.permute(1, 2, 0).numpy())
        resized.append(pil_to_tensor(resize(pil, [RESOLUTION, RESOLUTION], InterpolationMode.BICUBIC)))
    x = torch.stack(resized).float() / 255.0
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def vit_large(state_dict: dict[str, Tensor] | None = None) -> nn.Module:
    """timm's ``vit_large_patch14_dinov2`` for 224 px (CLS token out), with ``state_dict`` (37 x 37 grid) loaded.

    ``None`` leaves timm's random initialisation (tests make weights of the real shapes from it).
    """
    import timm

    if state_dict is None:
        return timm.create_model(TIMM_NAME, pretrained=False, img_size=RESOLUTION, num_classes=0).eval()
    state = dict(state_dict)
    state["pos_embed"] = dinov2_pos_embed(state["pos_embed"])
    with torch.device("meta"):  # no 300M-parameter random initialisation that the weights replace at once
        model = timm.create_model(TIMM_NAME, pretrained=False, img_size=RESOLUTION, num_classes=0)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        from gankit.eval.errors import WeightsError

        first = [ln.strip() for ln in str(exc).splitlines()[1:3]]
        raise WeightsError("the DINOv2 weights file does not fit timm's vit_large_patch14_dinov2: "
                           + " ".join(first)) from None
    return model.eval()


class DINOv2Features(nn.Module):
    """uint8 images -> the 1024-d CLS token of DINOv2 ViT-L/14 after dgm-eval's preprocessing."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, images: Tensor) -> Tensor:
        device = next(self.network.parameters()).device
        return self.network(preprocess(images).to(device))


@component("feature_extractors", "dinov2_vitl14")
def dinov2_vitl14(weights=None, device: torch.device | None = None):
    """DINOv2 ViT-L/14 (timm's ``vit_large_patch14_dinov2``) with the published weights: FD-DINOv2's space."""
    from gankit.core.errors import GankitError
    from gankit.eval.extractors import Extractor
    from gankit.eval.weights_dinov2 import load_state_dict

    if weights is None:
        raise GankitError("the dinov2_vitl14 feature extractor needs its weights file "
                          "(see `gankit weights path`)")
    module = DINOv2Features(vit_large(load_state_dict(weights)))
    return Extractor(
        "dinov2_vitl14", module, torch.device(device) if device is not None else torch.device("cpu"),
        weights_path=str(weights.path), weights_sha256=weights.sha256, weights_published=weights.comparable,
        weights_origin=weights.origin, weights_content_sha256=weights.content_sha256,
        input_resolution=RESOLUTION, resize=RESIZE, antialias=True, rgb=True, preprocessing=PREPROCESSING,
    )


dinov2_vitl14.needs_weights = "dinov2"  # the weights Spec the engine locates for it (gankit.eval.weights_dinov2)
