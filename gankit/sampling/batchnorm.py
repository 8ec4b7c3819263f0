"""What a generator's BatchNorm layers normalise with when it samples: the recipe's ``sampling.batchnorm``.

    G = prepare_for_sampling(G, "standing")   # in place: statistics estimated once, then G(z) is the answer
    images = G(z)                             # each image depends on its z (and label) only

- ``running``: the running statistics training accumulated (PyTorch's eval
  mode). They trail the weights: each is an average over the last few dozen
  training batches, made by earlier weights (and, with an EMA generator, by
  the raw generator's weights, not the average's).
- ``standing``: BigGAN's standing statistics (Brock et al. 2019, app. C.1;
  StudioGAN's ``-std_stat``): after training, the statistics re-estimated from
  ``standing_batches`` batches of ``standing_batch_size`` latents run through
  the final weights, each batch counted equally (momentum ``None``: a plain
  average). Estimated once, at the end of training or on load, and stored
  in the checkpoint, never per call.
- ``batch``: every batch normalised with its own statistics, as the PyTorch
  DCGAN tutorial samples (its G stays in training mode). An image then
  depends on the other images of its batch: "seed 7" is not one picture.

In ``running`` and ``standing`` a BatchNorm layer is a fixed affine map, so
an image depends only on its z (and label), at any batch size. Every mode
leaves a G without BatchNorm (StyleGAN2, R3GAN) unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from gankit.core.errors import GankitError, suggestion
from gankit.nn.conditional import cycle_labels, num_classes
from gankit.sampling.latents import fixed_noise

MODES = ("running", "standing", "batch")
STANDING_BATCHES = 16  # BigGAN's num_standing_accumulations
STANDING_BATCH_SIZE = 64
_BATCHNORM = nn.modules.batchnorm._BatchNorm
_STANDING_SEED_OFFSET = 7717  # the estimate's latents are not the fixed-noise grid's (seed) or evaluation's


def check_mode(mode: str, where: str = "sampling.batchnorm") -> str:
    """``mode`` when it is one of :data:`MODES`; else a GankitError naming ``where`` and the choices."""
    if mode not in MODES:
        raise GankitError(f"{where}: {mode!r} is not a BatchNorm sampling mode{suggestion(str(mode), list(MODES))}; "
                          f"choose one of {', '.join(MODES)}")
    return mode


def batchnorm_layers(G: nn.Module) -> list[tuple[str, nn.Module]]:
    """G's BatchNorm layers (SyncBatchNorm included), with their names."""
    return [(name, m) for name, m in G.named_modules() if isinstance(m, _BATCHNORM)]


def has_batchnorm(G: nn.Module) -> bool:
    return bool(batchnorm_layers(G))


def _forward(G: nn.Module, z: Tensor) -> Tensor:
    classes = num_classes(G)
    return G(z) if classes is None else G(z, cycle_labels(z.shape[0], classes, z.device))


@contextlib.contextmanager
def preserved_state(G: nn.Module) -> Iterator[nn.Module]:
    """Every buffer (running statistics, counters, ``w_avg``), train/eval flag and BatchNorm momentum restored."""
    buffers = [(b, b.detach().clone()) for b in G.buffers()]
    modes = [(m, m.training) for m in G.modules()]
    momenta = [(m, m.momentum) for _, m in batchnorm_layers(G)]
    try:
        yield G
    finally:
        with torch.no_grad():
            for buf, value in buffers:
                buf.copy_(value)
        for m, training in modes:
            m.train(training)
        for m, momentum in momenta:
            m.momentum = momentum


def _devices(G: nn.Module) -> list[int]:
    return sorted({p.device.index for p in G.parameters() if p.device.type == "cuda"} - {None})


@torch.no_grad()
def estimate_standing(G: nn.Module, batches: int = STANDING_BATCHES, batch_size: int = STANDING_BATCH_SIZE,
                      seed: int = 0) -> dict[str, Tensor]:
    """BigGAN's standing statistics of G's BatchNorm layers: ``{"<layer>.running_mean": ..., ".running_var": ...}``.

    Each layer's statistics restart and are averaged over ``batches`` batches
    of ``batch_size`` latents from ``seed`` (a private generator; a
    class-conditional G draws every class in turn), every other layer in eval
    mode. G itself comes back as it was. Empty for a G without BatchNorm.
    """
    layers = batchnorm_layers(G)
    if not layers:
        return {}
    if batches < 1 or batch_size < 2:
        raise GankitError(f"standing statistics need at least 1 batch of at least 2 latents, got {batches} of "
                          f"{batch_size} (sampling.standing_batches, sampling.standing_batch_size)")
    device = next((p.device for p in G.parameters()), torch.device("cpu"))
    z = fixed_noise(batches * batch_size, G.nz, (seed + _STANDING_SEED_OFFSET) % 2**64)  # torch's seed range
    with preserved_state(G), torch.random.fork_rng(devices=_devices(G)):
        torch.manual_seed(seed)  # noise a generator draws itself
        G.eval()
        for _, m in layers:
            if m.running_mean is None:
                raise GankitError(f"BatchNorm layer {type(m).__name__} of {type(G).__name__} keeps no running "
                                  "statistics (track_running_stats=False): it always uses the batch's, and standing "
                                  "statistics cannot be stored in it; use sampling.batchnorm: batch")
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: every batch counts the same (BigGAN's accumulation)
            m.train()
        for chunk in z.split(batch_size):
            _forward(G, chunk.to(device))
        return {f"{name}.{key}": getattr(m, key).detach().clone()
                for name, m in layers for key in ("running_mean", "running_var")}


def load_standing(G: nn.Module, standing: dict[str, Tensor]) -> None:
    """Put standing statistics (from :func:`estimate_standing`) into G's BatchNorm buffers."""
    buffers = dict(G.named_buffers())
    wanted = {f"{name}.{key}" for name, _ in batchnorm_layers(G) for key in ("running_mean", "running_var")}
    if set(standing) != wanted:
        missing, extra = sorted(wanted - set(standing)), sorted(set(standing) - wanted)
        raise GankitError(f"the standing statistics do not fit {type(G).__name__}'s BatchNorm layers (missing "
                          f"{missing[:3] or 'none'}, unknown {extra[:3] or 'none'})")
    with torch.no_grad():
        for key, value in standing.items():
            if buffers[key].shape != value.shape:
                raise GankitError(f"standing statistics '{key}' have shape {tuple(value.shape)}, the layer "
                                  f"{tuple(buffers[key].shape)}")
            buffers[key].copy_(value)


def use_batch_statistics(G: nn.Module) -> None:
    """Every BatchNorm layer without running statistics: it normalises with the batch's, in eval mode too.

    The state dict loses those layers' running_mean/var/num_batches_tracked.
    torch.export, TorchScript and ONNX keep this form exactly.
    """
    for _, m in batchnorm_layers(G):
        m.track_running_stats = False
        m.running_mean = m.running_var = m.num_batches_tracked = None


def prepare_for_sampling(G: nn.Module, batchnorm: str = "standing", standing: dict[str, Tensor] | None = None, *,
                         batches: int = STANDING_BATCHES, batch_size: int = STANDING_BATCH_SIZE,
                         seed: int = 0) -> nn.Module:
    """G, in place, in eval mode without gradients and its BatchNorm layers in mode ``batchnorm``; returns G.

    ``standing``: statistics estimated before (a checkpoint's); without them
    they are estimated now (``batches`` × ``batch_size`` latents from ``seed``).
    Afterwards ``G(z)``, :func:`gankit.generate` and every export agree.
    """
    check_mode(batchnorm, "batchnorm")
    G.eval().requires_grad_(False)
    if not has_batchnorm(G):
        return G
    if batchnorm == "standing":
        load_standing(G, standing if standing is not None else estimate_standing(G, batches, batch_size, seed))
    elif batchnorm == "batch":
        use_batch_statistics(G)
    return G


@contextlib.contextmanager
def sampling_mode(G: nn.Module, seed: int = 0, batchnorm: str | None = None,
                  standing: dict[str, Tensor] | None = None) -> Iterator[nn.Module]:
    """G as it samples, for the block: eval mode, BatchNorm as ``batchnorm`` says; all put back afterwards.

    ``batchnorm`` None: BatchNorm as G is (a :func:`prepare_for_sampling` G,
    or running statistics); ``"standing"`` with ``standing`` (the trainer's
    estimate of this step); ``"batch"``: the batch's statistics; ``"running"``.
    Buffers, train/eval flags and the global random streams are restored, so
    sampling during training never changes the training; randomness inside G
    (StyleGAN2's noise inputs) draws from global generators reseeded with
    ``seed``.
    """
    if batchnorm is not None:
        check_mode(batchnorm, "batchnorm")
    if batchnorm == "standing" and standing is None and has_batchnorm(G):
        raise ValueError("sampling_mode(batchnorm='standing') needs the standing statistics (estimate_standing)")
    with preserved_state(G), torch.random.fork_rng(devices=_devices(G)):
        G.eval()
        if batchnorm == "standing" and standing:
            load_standing(G, standing)
        elif batchnorm == "batch":
            for _, m in batchnorm_layers(G):
                m.train()  # batch statistics; the running ones it updates are put back on exit
        torch.manual_seed(seed)
        yield G
