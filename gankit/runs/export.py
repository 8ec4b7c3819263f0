"""A trained generator as a file that runs without gankit: pt2, TorchScript, ONNX, or a state dict.

    gankit export runs/quickstart/<run id> --format onnx --out generator.onnx

What is exported is what ``gankit sample`` computes (:class:`Exportable`):

- ``images = model(z)``, or ``model(z, labels)`` for a class-conditional
  generator (labels int64 (N,)); z float32 (N, nz); images float32
  (N, C, H, W), nominally in [-1, 1]; any batch size N (a dynamic axis).
- BatchNorm works as in ``load_generator(RUN)``: the run's
  ``sampling.batchnorm`` (:mod:`gankit.sampling.batchnorm`). ``running`` and
  ``standing`` fold into fixed per-channel affine maps (the standing
  statistics are the checkpoint's), so an image depends only on its z;
  ``batch`` exports the layers without running statistics, which
  torch.export, TorchScript and ONNX (ReduceMean into BatchNormalization)
  all keep exactly: each batch then normalises with its own statistics, as
  the tutorial's grids do. Every other layer is in eval mode.
- A generator with noise inputs (StyleGAN2) uses its stored constant noise
  (``noise_mode='const'``): the file is a deterministic function of z.
  In TorchScript and ONNX its modulated convolutions run unfused (one shared
  convolution, the activations scaled per image): the fused form's grouped
  convolution has one group per image, which neither format can make a
  dynamic batch of. Unfused and fused differ by float rounding only (about
  2e-5 at the paper's widths); pt2 keeps the fused form, as ``gankit sample``.
- ``truncation`` (a generator with its own truncation trick only, e.g.
  StyleGAN2's ψ toward the mean w) is baked in. For a z-only generator the
  truncation trick is in how z is drawn: pass truncated z.

Each file is checked as soon as it is written: read back (ONNX through
onnxruntime), run on fixed latents (and labels) and compared with the module
it was made from run eagerly (:class:`Exportable`, which for every generator
but StyleGAN2's unfused forms computes exactly what ``gankit sample`` does);
more than ``tolerance`` (1e-5; times the largest |pixel| when that is above
1, as an untrained StyleGAN2's can be) apart is an error naming the
difference, and the file is not kept. The ``state_dict`` format holds the
generator's weights (standing statistics in BatchNorm's buffers), its
sampling mode and its recipe section, to rebuild it with gankit and its
plugin (:func:`rebuild_generator`).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from gankit.core.errors import GankitError
from gankit.nn.conditional import cycle_labels, num_classes
from gankit.sampling import fixed_noise, has_own_truncation, sampling_mode
from gankit.sampling.batchnorm import check_mode, use_batch_statistics

FORMATS = ("pt2", "torchscript", "onnx", "state_dict")
SUFFIXES = {"pt2": ".pt2", "torchscript": ".torchscript.pt", "onnx": ".onnx", "state_dict": ".state_dict.pt"}
TOLERANCE = 1e-5
CHECK_BATCH = 5  # the check runs at a batch size other than the tracing example's (2): the batch axis is dynamic
STATE_DICT_FORMAT = "gankit.generator_state_dict"
ONNX_EXTRA = "pip install 'gankit[export]'"
_ONNX_INLINE_LIMIT = 1_800_000_000  # bytes of weights: larger ONNX models keep them in FILE.data (protobuf's 2 GB)


def _takes(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _forward_kwargs(G: nn.Module, truncation: float | None) -> dict:
    """The keyword arguments gankit's export fixes: constant noise, and truncation when G has its own."""
    if truncation is not None and not has_own_truncation(G):
        raise GankitError(f"--truncation {truncation:g}: generator {type(G).__name__} has no truncation of its own; "
                          "its truncation trick is in the latents: export without --truncation and feed truncated z")
    extra = {"noise_mode": "const"} if _takes(G.forward, "noise_mode") else {}
    if truncation is not None:
        extra["truncation_psi"] = truncation
    return extra


class Exportable(nn.Module):
    """``forward(z[, labels]) -> images``: the generator as ``gankit sample`` runs it, ready to trace.

    A copy of G in eval mode, its BatchNorm layers as G's (a generator from
    ``load_generator`` is in its run's sampling mode); G itself is not changed.
    """

    def __init__(self, G: nn.Module, truncation: float | None = None, unfused: bool = False):
        super().__init__()
        self.extra = _forward_kwargs(G, truncation)
        self.G = copy.deepcopy(G).eval().requires_grad_(False)
        self.conditional = num_classes(G) is not None
        # ``unfused``, for a StyleGAN2-like G (mapping, then a synthesis network that takes fused_modconv):
        # the modulated convolutions without their batch-sized grouped convolution
        self.unfused = unfused and has_unfused_form(self.G)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.unfused:
            trunc = {"truncation_psi": self.extra["truncation_psi"]} if "truncation_psi" in self.extra else {}
            ws = self.G.mapping(z, labels, **trunc)
            return self.G.synthesis(ws, noise_mode="const", fused_modconv=False)
        return self.G(z, labels, **self.extra) if self.conditional else self.G(z, **self.extra)


def has_unfused_form(G: nn.Module) -> bool:
    """Whether G is mapping + synthesis with a ``fused_modconv`` switch (StyleGAN2)."""
    return (hasattr(G, "mapping") and hasattr(G, "synthesis") and _takes(G.forward, "noise_mode")
            and _takes(G.synthesis.forward, "fused_modconv"))


def eager_images(G: nn.Module, z: Tensor, labels: Tensor | None, truncation: float | None = None) -> Tensor:
    """What ``gankit sample`` computes for one batch (noise inputs constant): G's own forward, eagerly."""
    extra = _forward_kwargs(G, truncation)
    with torch.no_grad(), sampling_mode(G):
        return G(z, labels, **extra) if labels is not None else G(z, **extra)


@dataclass
class ExportResult:
    path: Path
    format: str
    max_diff: float  # max |exported - eager| on the check's latents
    batch: int  # the check's batch size
    sample_diff: float  # max |eager exported module - gankit sample's forward|: 0 but for unfused StyleGAN2


def _inputs(G: nn.Module, n: int, seed: int) -> tuple[Tensor, ...]:
    z = fixed_noise(n, G.nz, seed)
    classes = num_classes(G)
    return (z,) if classes is None else (z, cycle_labels(n, classes))


@contextlib.contextmanager
def _quiet():
    """Exporters' progress lines and tracer warnings, kept off the console (errors still surface)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def require_onnx():
    missing = []
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise GankitError(f"--format onnx needs the export extra ({', '.join(missing)} not installed): {ONNX_EXTRA}")


def _write(model: Exportable, fmt: str, path: Path, example: tuple[Tensor, ...]) -> None:
    batch = torch.export.Dim("batch", min=1)
    dynamic = tuple({0: batch} for _ in example)
    with _quiet():
        if fmt == "pt2":
            torch.export.save(torch.export.export(model, example, dynamic_shapes=dynamic), path)
        elif fmt == "torchscript":
            torch.jit.save(torch.jit.trace(model, example, check_trace=False), path)
        else:
            size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
            names = ["z", "labels"][: len(example)]
            torch.onnx.export(model, example, path, input_names=names, output_names=["images"],
                              dynamic_shapes=dynamic, dynamo=True, external_data=size > _ONNX_INLINE_LIMIT)


def _run_file(fmt: str, path: Path, inputs: tuple[Tensor, ...]) -> Tensor:
    with _quiet(), torch.no_grad():
        if fmt == "pt2":
            return torch.export.load(path).module()(*inputs)
        if fmt == "torchscript":
            return torch.jit.load(path)(*inputs)
        if fmt == "onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
            return torch.from_numpy(session.run(None, feed)[0])
        raise ValueError(f"unknown export format {fmt!r}")


def batchnorm_mode(G: nn.Module, stated: str | None = None) -> str:
    """The sampling mode G's BatchNorm layers are in: ``stated`` (its loader's), or read from the layers."""
    if stated is not None:
        return check_mode(stated, "batchnorm")
    layers = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    return "batch" if layers and all(m.running_mean is None for m in layers) else "running"


def state_dict_file(G: nn.Module, recipe, ema: bool, batchnorm: str | None = None) -> dict:
    """What the ``state_dict`` format saves: weights, and how to rebuild the network (plain values only).

    Version 2 adds ``batchnorm``, G's sampling mode (standing statistics are
    the BatchNorm buffers it saves); version 1 files sampled on batch statistics.
    """
    from gankit.core.version import __version__

    return {
        "format": STATE_DICT_FORMAT, "version": 2, "gankit": __version__, "batchnorm": batchnorm_mode(G, batchnorm),
        "generator": {"name": recipe.generator.name, **recipe.generator.args},  # the recipe's generator section
        "data": {"image_size": recipe.data.image_size, "channels": recipe.data.channels},  # passed when G takes them
        "nz": G.nz, "num_classes": num_classes(G), "ema": ema,
        "state_dict": {k: v.detach().cpu() for k, v in G.state_dict().items()},
    }


def rebuild_generator(path_or_file, device: str | torch.device = "cpu") -> nn.Module:
    """The generator of a ``state_dict`` export, rebuilt through the registry (its plugin must be installed)."""
    from gankit.core.plugins import registry
    from gankit.rundir.checkpoint import load_state

    saved = path_or_file if isinstance(path_or_file, dict) else torch.load(path_or_file, weights_only=True)
    if not isinstance(saved, dict) or saved.get("format") != STATE_DICT_FORMAT:
        raise GankitError(f"'{path_or_file}' is not a gankit state_dict export (gankit export --format state_dict)")
    spec = dict(saved["generator"])
    G = registry("generators").build_from_recipe(spec.pop("name"), saved["data"], **spec)
    mode = saved.get("batchnorm", "batch")  # version 1 files sampled on batch statistics
    if mode == "batch" and saved.get("version", 1) >= 2:
        use_batch_statistics(G)  # the file holds no running statistics: neither may the layers
    load_state(G, saved["state_dict"], "generator", str(path_or_file))
    if mode == "batch":
        use_batch_statistics(G)  # a version 1 file's running statistics are not used
    return G.to(device).eval().requires_grad_(False)


def export_generator(G: nn.Module, fmt: str, out: str | os.PathLike, *, recipe=None, ema: bool = True,
                     truncation: float | None = None, tolerance: float = TOLERANCE, seed: int = 0,
                     batchnorm: str | None = None) -> ExportResult:
    """Write G (on the CPU, float32) to ``out`` in ``fmt`` and check the file against G run eagerly.

    G is exported as it samples (``load_generator``'s G is in its run's
    sampling mode, ``batchnorm``, which the state_dict format records).
    ``recipe`` (the run's) is needed for ``state_dict``. The file is written
    in a temporary folder beside ``out`` and moved into place only once its
    output on ``CHECK_BATCH`` seeded latents is within ``tolerance`` of the
    eager module's.
    """
    if fmt not in FORMATS:
        raise GankitError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "onnx":
        require_onnx()
    if fmt == "state_dict" and truncation is not None:
        raise GankitError("--truncation is not stored by --format state_dict: pass truncation_psi when calling the "
                          "rebuilt generator")
    if fmt == "state_dict" and recipe is None:
        raise ValueError("the state_dict format needs the run's recipe")
    G = copy.deepcopy(G).cpu().float().eval().requires_grad_(False)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    inputs = _inputs(G, CHECK_BATCH, seed)
    labels = inputs[1] if len(inputs) == 2 else None
    sample = eager_images(G, inputs[0], labels, truncation)  # what gankit sample computes
    model = Exportable(G, truncation, unfused=fmt in ("torchscript", "onnx")) if fmt != "state_dict" else None
    with torch.no_grad():
        reference = model(*inputs) if model is not None else sample
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tmp = staging / out.name
        if fmt == "state_dict":
            torch.save(state_dict_file(G, recipe, ema, batchnorm), tmp)
            got = eager_images(rebuild_generator(tmp), inputs[0], labels)
        else:
            _write(model, fmt, tmp, _inputs(G, 2, seed + 1))
            got = _run_file(fmt, tmp, inputs)
        diff = float((got.float() - reference).abs().max()) if got.shape == reference.shape else float("inf")
        scale = max(1.0, float(reference.abs().max()))  # images in [-1, 1]: an absolute tolerance
        if not diff <= tolerance * scale:
            shape = "" if got.shape == reference.shape else \
                f" (shape {tuple(got.shape)}, eager {tuple(reference.shape)})"
            limit = f"{tolerance:g}" + (f" x {scale:.3g} (the largest |pixel|)" if scale > 1 else "")
            raise GankitError(f"the {fmt} export of {type(G).__name__} does not reproduce the generator: max "
                              f"|exported - eager| = {diff:.3g} > {limit} on {CHECK_BATCH} latents{shape}; "
                              f"nothing was written to {out}. Float rounding alone stays near 1e-6 to 1e-5: if the "
                              f"difference is of that size, --tolerance accepts it; else try another --format")
        for produced in staging.iterdir():  # FILE, and FILE.data for an ONNX model over 1.8 GB
            os.replace(produced, out.parent / produced.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(out, fmt, diff, CHECK_BATCH, float((reference - sample).abs().max()))
