"""Feature extractors: uint8 images in, one feature vector per image out.

The ``feature_extractors`` registry holds factories; ``inception`` (the
default) is torch-fidelity's InceptionV3, the network FID, KID and IS are
defined on. A plugin can register its own, e.g. a small classifier::

    @gankit.hookimpl
    def gankit_register(registry):
        registry("feature_extractors").register("digits_clf", DigitsClassifier)

The factory is called with whichever of ``channels`` and ``image_size`` (the
recipe's ``data`` section) it accepts and returns an ``nn.Module`` whose
forward maps uint8 images ``(N, C, H, W)`` in 0..255 (C = data.channels; 3
for image folders) to ``(N, d)`` features. Its identity in caches and
provenance is its registry name plus the sha256 of its state dict (or its own
``weights_sha256`` attribute).

Every image goes through each extractor exactly once per evaluation:
:class:`Extractor` returns all the outputs its metrics need from that one pass
(Inception: the 2048-d pool features for FID/KID/PRDC and the 1008 unbiased
logits for IS).
"""

from __future__ import annotations

import io
import time
from typing import Any

import torch
from torch import Tensor, nn

from gankit.core.errors import GankitError
from gankit.core.registry import component

# torch-fidelity resizes with its TensorFlow-1.x compatible bilinear
# interpolation (align_corners=False) and no antialiasing; torchmetrics'
# default (antialias=True) would give different numbers.
INCEPTION_RESIZE = "bilinear, TensorFlow-1.x compatible (torch-fidelity), align_corners=False"
INCEPTION_RESOLUTION = 299


def _inception_class():
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class InceptionV3(FeatureExtractorInceptionV3):
        """torch-fidelity's InceptionV3 whose weights gankit loads itself.

        torch-fidelity's constructor reads its file with ``weights_only=False``;
        gankit hands it an empty in-memory placeholder (ignored below) and then
        loads the verified tensors with ``weights_only=True``.
        """

        def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
            if not state_dict:  # the constructor's placeholder
                return None
            return super().load_state_dict(state_dict, strict=strict, assign=assign)

    return InceptionV3


def inception_module(state_dict: dict[str, Tensor] | None,
                     features: tuple[str, ...] = ("2048", "logits_unbiased")) -> nn.Module:
    """torch-fidelity's InceptionV3 giving ``features`` (default: pool features and IS logits).

    ``state_dict=None`` leaves the random initialisation (tests calibrate and
    save such a network to get a weights file of the real layout).
    """
    placeholder = io.BytesIO()
    torch.save({}, placeholder)
    placeholder.seek(0)
    model = _inception_class()("inception-v3-compat", list(features), placeholder)
    if state_dict is not None:
        try:
            model.load_state_dict(state_dict)
        except RuntimeError as exc:
            from gankit.eval.errors import WeightsError

            first = [ln.strip() for ln in str(exc).splitlines()[1:3]]
            raise WeightsError(
                "the Inception weights file does not fit torch-fidelity's InceptionV3: " + " ".join(first)
            ) from None
    return model.eval().requires_grad_(False)


def state_sha256(module: nn.Module) -> str:
    """A fingerprint of a module's parameters and buffers (:func:`gankit.eval.weights.tensors_sha256`)."""
    from gankit.eval.weights_lookup import tensors_sha256

    return tensors_sha256(module.state_dict())


class Extractor:
    """One feature extractor on its device, with what provenance and caches need.

    ``extract(images)`` takes uint8 images and returns ``{"features": (N, d)}``
    (plus ``"logits"`` for Inception), float32 on the CPU. ``images_seen``
    counts images passed through the network (tests check cache hits with it),
    ``seconds`` the wall time spent in ``extract`` (the feature pass the intervals' cost is told against).
    """

    def __init__(
        self,
        name: str,
        module: nn.Module,
        device: torch.device,
        *,
        weights_path: str | None = None,
        weights_sha256: str | None = None,
        weights_published: bool | None = None,
        weights_origin: str | None = None,
        weights_content_sha256: str | None = None,
        input_resolution: int | None = None,
        resize: str = "none (the extractor's own preprocessing)",
        antialias: bool | None = None,
        rgb: bool = False,
        preprocessing: str | None = None,
    ):
        self.name = name
        self.module = module.to(device).eval().requires_grad_(False)
        self.device = device
        self.weights_path = weights_path
        self.weights_sha256 = weights_sha256 or getattr(module, "weights_sha256", None) or state_sha256(module)
        self.weights_published = weights_published  # the published network's weights: FID comparable to papers
        self.weights_origin = weights_origin
        self.weights_content_sha256 = weights_content_sha256
        self.input_resolution = input_resolution
        self.resize = resize
        self.antialias = antialias
        self.preprocessing = preprocessing  # what else happens before the network (scaling, normalisation, ...)
        self.rgb = rgb  # replicate grey images to RGB first (as PIL's convert("RGB"), which torch-fidelity uses)
        self.images_seen = 0
        self.seconds = 0.0

    @torch.no_grad()
    def extract(self, images: Tensor) -> dict[str, Tensor]:
        if images.dtype != torch.uint8:
            raise TypeError(f"feature extractors take uint8 images, got {images.dtype}")
        if self.rgb and images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        started = time.perf_counter()
        out = self.module(images.to(self.device))
        self.images_seen += images.shape[0]
        if isinstance(out, Tensor):
            out = {"features": out}
        elif isinstance(out, (tuple, list)):  # torch-fidelity: one tensor per requested feature
            out = {"features": out[0], "logits": out[1]} if len(out) > 1 else {"features": out[0]}
        elif not isinstance(out, dict) or "features" not in out:
            raise GankitError(
                f"feature extractor '{self.name}' must return an (N, d) tensor or a dict with 'features', "
                f"got {type(out).__name__}"
            )
        out = {k: v.reshape(images.shape[0], -1).float().cpu() for k, v in out.items()}  # .cpu() waits for the GPU
        self.seconds += time.perf_counter() - started
        return out

    def provenance(self) -> dict[str, Any]:
        """The fields every row measured with this extractor carries."""
        return {
            "feature_extractor": self.name,
            "weights_path": self.weights_path,
            "weights_sha256": self.weights_sha256,
            "weights_published": self.weights_published,
            "weights_origin": self.weights_origin,
            "weights_content_sha256": self.weights_content_sha256,
            "input_resolution": self.input_resolution,
            "resize": self.resize,
            "antialias": self.antialias,
            "preprocessing": self.preprocessing,
        }

    def identity(self) -> dict[str, Any]:
        """What the cached reference features depend on."""
        where = ("weights_path", "weights_published", "weights_origin", "weights_content_sha256")
        return {k: v for k, v in self.provenance().items() if k not in where}


@component("feature_extractors", "inception")
def inception(weights=None, device: torch.device | None = None) -> Extractor:
    """The ``inception`` extractor: torch-fidelity's InceptionV3 with the given :class:`WeightsFile`.

    With the converted feature weights (no classifier) it computes the pool
    features only: no logits, so no Inception Score from a missing layer.
    """
    from gankit.eval.weights import load_state_dict

    if weights is None:
        raise GankitError("the inception feature extractor needs its weights file (see `gankit weights path`)")
    features = ("2048", "logits_unbiased") if weights.has_classifier else ("2048",)
    module = inception_module(load_state_dict(weights), features)
    device = torch.device(device) if device is not None else torch.device("cpu")
    # No channels_last on the CPU, though oneDNN runs NHWC 1.5-2x faster: its features differ from
    # torch-fidelity's by ~1e-6, which a peaked Inception Score amplifies past the 1e-5 agreement gankit keeps.
    return Extractor(
        "inception", module, device,
        weights_path=str(weights.path), weights_sha256=weights.sha256, weights_published=weights.comparable,
        weights_origin=weights.origin, weights_content_sha256=weights.content_sha256,
        input_resolution=INCEPTION_RESOLUTION, resize=INCEPTION_RESIZE, antialias=False, rgb=True,
    )


inception.needs_weights = "inception"  # the weights Spec the engine locates for it (gankit.eval.weights)


def build_extractor(reg, name: str, device: torch.device, channels: int, image_size: int,
                    weights=None) -> Extractor:
    """The extractor registered as ``name`` in ``reg`` (the ``feature_extractors`` registry).

    Its factory is given whichever of ``channels``, ``image_size``,
    ``weights`` (the :class:`WeightsFile` its ``needs_weights`` names) and ``device`` it
    accepts, like any component; an ``nn.Module`` it returns is wrapped.
    """
    if name not in reg:
        raise GankitError(f"eval.feature_extractor: {reg.unknown_message(name)}")
    offered = {"channels": channels, "image_size": image_size, "weights": weights, "device": device}
    try:
        module = reg.build(name, offered)
    except GankitError:
        raise
    except Exception as exc:
        raise GankitError(f"feature extractor '{name}' failed to build: {type(exc).__name__}: {exc}") from None
    if isinstance(module, Extractor):
        return module
    if not isinstance(module, nn.Module):
        raise GankitError(f"feature extractor '{name}' must build an nn.Module, got {type(module).__name__}")
    return Extractor(name, module, device)
