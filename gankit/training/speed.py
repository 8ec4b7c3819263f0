"""How the models run: ``train.precision``, ``train.channels_last``, ``train.compile``, ``train.deterministic``.

    configure_determinism(r.train.deterministic, device)   # before any model is built
    check_precision(r.train.precision, device)
    with autocast(r.train.precision, device): ...          # G's and D's forward passes and losses
    scaler = make_scaler(r.train.precision, device)        # fp16 only: one per network
    prepare_models(G, D, channels_last, compile)           # in place, after .to(device) and the EMA copy

None of them changes the models' weights or their state-dict keys, so a
checkpoint loads whatever these settings were (``gankit sample`` and
``gankit eval`` ignore them). Which ones help where: benchmarks/README.md.
"""

from __future__ import annotations

import contextlib
import os

import torch
from torch import nn

from gankit.core.errors import GankitError
from gankit.training.health import is_out_of_memory

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# The torch.compile backend. Internal: the tests set it to a cheap backend ("aot_eager"), since inductor
# spends tens of seconds compiling even a tiny model on a small CPU.
COMPILE_BACKEND_ENV = "GANKIT_COMPILE_BACKEND"


def configure_determinism(deterministic: bool, device: torch.device) -> None:
    """Deterministic kernels only (an op without one raises), or the fastest ones.

    Set both ways, so a run does what its recipe says whatever an earlier run
    in the same process set.
    """
    if deterministic:
        # cuBLAS needs a fixed workspace to be deterministic; it reads this when it starts, so before any CUDA work.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if torch.are_deterministic_algorithms_enabled() != deterministic or deterministic:
        # Only when it changes something: the call imports torch._dynamo (seconds) on first use.
        torch.use_deterministic_algorithms(deterministic, warn_only=False)
    if deterministic:
        torch.backends.cudnn.benchmark = False  # autotuning may pick a different algorithm each run
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # input shapes are fixed: the autotuned choice pays after one step


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot autocast to (torch would silently fall back to fp32)."""
    if precision == "fp32":
        return
    if not torch.amp.is_autocast_available(device.type):
        raise GankitError(f"train.precision: {precision} needs autocast, which torch {torch.__version__} does not "
                          f"support on {device.type}; set train.precision: fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise GankitError(f"train.precision: bf16 needs a GPU with bfloat16 support (Ampere or newer), and "
                          f"{torch.cuda.get_device_name(device)} has none; set train.precision: fp16 or fp32")


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context G's and D's forward passes and losses run in; backward passes run outside it."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def make_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """fp16's loss scaler (small gradients would underflow fp16's range); None for fp32 and bf16."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def prepare_models(G: nn.Module, D: nn.Module, channels_last: bool, compile: bool) -> None:
    """NHWC weights and/or torch.compile, in place.

    ``nn.Module.compile`` (not ``torch.compile(module)``) keeps the module
    itself, so its state-dict keys have no ``_orig_mod.`` prefix and the
    optimizers and checkpoints see the same parameters. Compilation happens
    on the first call; a failure then is turned into a GankitError by
    :func:`user_error`.
    """
    for module in (G, D):
        if channels_last:
            module.to(memory_format=torch.channels_last)  # parameters keep their identity: optimizers stay valid
        if compile:
            module.compile(backend=os.environ.get(COMPILE_BACKEND_ENV, "inductor"))


def user_error(exc: BaseException, train) -> GankitError | None:
    """A failure caused by ``train.compile`` or ``train.deterministic``, as a message naming the key; else None.

    ``train`` is the recipe's TrainSection. Both failures only show once the
    models run (compilation is lazy; a nondeterministic op raises when called).
    """
    if is_out_of_memory(exc):
        return None  # the trainer's own message says what to reduce
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()] or [type(exc).__name__]
    # "backend='inductor' raised:" says little without the line after it
    first = " ".join(lines[:2]) if lines[0].endswith(":") else lines[0]
    if train.deterministic and "does not have a deterministic implementation" in text:
        op = first.split(" does not have")[0]
        return GankitError(f"train.deterministic: {op} has no deterministic implementation on this device; "
                           "set train.deterministic: false, or leave out the component that uses it")
    if train.compile and type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
        hint = ("install a C++ compiler (inductor needs one, set $CXX to it), or set train.compile: false"
                if "C++ compiler" in text or "CxxCompiler" in text else "set train.compile: false")
        return GankitError(f"train.compile: torch.compile failed: {first[:300]}\n    {hint}")
    return None
