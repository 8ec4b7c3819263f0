"""Checks that build: before any data work, G and D are built and called on two images on the CPU.

``gankit validate`` and ``gankit run`` call :func:`preflight` after the
recipe's own checks, so a plugin's model that raises, or gives the wrong
shape, fails in a second with its name, instead of minutes later deep
inside D. The random streams are fenced: preflight never changes a run.
"""

from __future__ import annotations

import warnings

import torch

from gankit.core.errors import GankitError, RecipeError
from gankit.core.plugins import PluginWarning, get_host
from gankit.nn.conditional import num_classes
from gankit.recipe.build import build_discriminator, build_generator

N = 2  # images in the trial batch


def _who(kind: str, name: str) -> str:
    reg = get_host().registry(kind)
    entry = reg.entry(name)
    return f"{reg.singular} '{name}' (plugin '{entry.plugin}', {entry.location})"


def _device_problems(recipe) -> list[str]:
    device = recipe.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        return [f"device: '{device}' asked for, but CUDA is not available on this machine; set device: auto "
                "(CUDA when there is one) or device: cpu"]
    if device.startswith("cuda:") and device[5:].isdigit() and int(device[5:]) >= torch.cuda.device_count():
        return [f"device: '{device}' but this machine has {torch.cuda.device_count()} GPU(s); use cuda:0 to "
                f"cuda:{torch.cuda.device_count() - 1}"]
    return []


def _call(what: str, fn):
    try:
        return fn()
    except GankitError:
        raise
    except Exception as exc:  # a plugin's model failing to build or to run: name it, no traceback
        raise GankitError(f"{what}: {type(exc).__name__}: {exc}") from None


def preflight(recipe, source: str = "recipe") -> None:
    """Raise a clear error unless the recipe's device exists and its G and D fit each other."""
    problems = _device_problems(recipe)
    if problems:
        raise RecipeError(source, problems)
    d = recipe.data
    g_who, d_who = _who("generators", recipe.generator.name), _who("discriminators", recipe.discriminator.name)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        G = _call(f"{g_who} failed to build", lambda: build_generator(recipe))
        D = _call(f"{d_who} failed to build", lambda: build_discriminator(recipe))
        G.train(), D.train()
        z = torch.randn(N, G.nz)
        classes = num_classes(G)
        labels = torch.arange(N) % classes if classes is not None else None
        x = _call(f"{g_who} failed on a trial batch of {N} latents",
                  lambda: G(z) if labels is None else G(z, labels))
        expected = (N, d.channels, d.image_size, d.image_size)
        if not isinstance(x, torch.Tensor) or tuple(x.shape) != expected:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise GankitError(f"{g_who} gives images of shape {got} for {N} latents, but the data are "
                              f"{expected} (N, data.channels, data.image_size, data.image_size); make the generator "
                              "match the data section, or the data section match the generator")
        if not torch.isfinite(x).all():
            raise GankitError(f"{g_who} gives non-finite images (NaN or inf) at initialisation")
        if getattr(G, "output_range", (-1, 1)) is not None and (x.min() < -1 - 1e-3 or x.max() > 1 + 1e-3):
            warnings.warn(f"{g_who} gives values in [{float(x.min()):.3g}, {float(x.max()):.3g}] while the data are "
                          "in [-1, 1]; end it in tanh, or set its output_range = None if this is intended",
                          PluginWarning, stacklevel=2)
        d_labels = (torch.arange(N) % num_classes(D)) if num_classes(D) is not None else None
        out = _call(f"{d_who} failed on a trial batch of {N} images of shape {expected}",
                    lambda: D(x) if d_labels is None else D(x, d_labels))
        if not isinstance(out, torch.Tensor) or tuple(out.shape) not in ((N,), (N, 1)):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise GankitError(f"{d_who} gives {got} for {N} images; a discriminator gives one logit per image, "
                              f"shape ({N},) or ({N}, 1)")
