"""What a loss or a regulariser returns, checked on every call, so a plugin that breaks its contract is named.

    loss_d, stats = call_loss(loss.d_loss, D, real, fake)           # the GAN step's calls
    penalty, stats = call_penalty(reg.penalty, D, real, fake, step)

The contracts are :mod:`gankit.contracts`': a loss returns ``(loss, stats)``,
a 0-d floating-point loss with a gradient and a dict of scalar stats (or
None); a regulariser returns ``(penalty, stats)`` alike, its penalty None on
a step a lazy one skips. A call that returns anything else is a
:class:`ContractError` naming the component (its registry name and plugin),
the method's file and line, what it returned and what was expected.

During training only types, shapes and flags are read, never values: the
checks cost no host sync. The trial step before a run (``trial=True``,
:func:`gankit.training.assemble.trial_step`) also asks every value to be
finite and names the component an exception came from; during training a
non-finite value is divergence, which :mod:`gankit.training.nonfinite` handles.
"""

from __future__ import annotations

import inspect
import numbers
import reprlib
import traceback
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gankit.core.errors import GankitError
from gankit.core.plugins import registry

STATS = "a dict of scalar stats to log (or None)"
EXPECTED = {
    "losses": "(loss, stats): a 0-d floating-point loss tensor with a gradient, and " + STATS,
    "regularizers": "(penalty, stats): a 0-d floating-point penalty tensor with a gradient (None on a step it "
                    "skips), and " + STATS,
}
TORCH_DIR = str(Path(torch.__file__).parent)


class ContractError(GankitError):
    """A component returned, or did, what its contract does not allow (``cls``: its class, of registry ``kind``)."""

    def __init__(self, message: str, kind: str = "", cls: type | None = None, nonfinite: bool = False):
        super().__init__(message)
        self.kind, self.cls, self.nonfinite = kind, cls, nonfinite

    def at_step(self, step: int, note: str) -> ContractError:
        """The same error, said of training step ``step``, with ``note`` (which checkpoint is kept)."""
        return ContractError(f"at training step {step}, {self}\n    {note}", self.kind, self.cls, self.nonfinite)

    def with_arguments(self, recipe) -> ContractError:
        """A non-finite value's error with the recipe's arguments of the component: one may be the cause (a NaN)."""
        sections = {"losses": [("loss", recipe.loss)],
                    "regularizers": [(f"regularizers.{i}", s) for i, s in enumerate(recipe.regularizers)]}
        reg = registry(self.kind) if self.kind else None
        given = [f"{key}: {dict(spec.args)}" for key, spec in sections.get(self.kind, [])
                 if self.nonfinite and spec.args and spec.name in reg and reg.get(spec.name) is self.cls]
        if not given:
            return self
        return ContractError(f"{self}\n    the recipe gives it {'; '.join(given)}: check these values too",
                             self.kind, self.cls, self.nonfinite)


def component(obj: Any, kind: str) -> str:
    """``loss 'bce' (plugin 'gankit')``: the registry name ``obj`` was built from, or its class.

    A plugin that is a recipe's ``.py`` file is not repeated: the method's file and line name it.
    """
    reg = registry(kind)
    for entry in reg.entries():
        if entry.obj is type(obj):
            plugin = "" if entry.plugin.endswith(".py") else f" (plugin '{entry.plugin}')"
            return f"{reg.singular} '{entry.name}'{plugin}"
    return f"{reg.singular} {type(obj).__qualname__}"


def source_of(method) -> str:
    """``Class.method (file.py:line)`` of a bound method."""
    fn = getattr(method, "__func__", method)
    try:
        where = f"{inspect.getsourcefile(fn)}:{inspect.getsourcelines(fn)[1]}"
    except (TypeError, OSError):
        where = getattr(fn, "__module__", "?")
    return f"{getattr(fn, '__qualname__', getattr(fn, '__name__', 'call'))} ({where})"


def summary(value: Any) -> str:
    """A short description of a returned value: type, shape, value."""
    if isinstance(value, Tensor):
        text = f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
        if value.numel() == 1:
            text += f" = {value.detach().float().item():.4g}"
        return text
    if isinstance(value, (tuple, list)):
        items = ", ".join(summary(v) for v in value[:3]) + (", ..." if len(value) > 3 else "")
        return f"a {type(value).__name__} of {len(value)} ({items})"
    if isinstance(value, dict):
        return f"a dict with keys {reprlib.repr(list(value))}"
    return "None" if value is None else f"a {type(value).__name__} ({reprlib.repr(value)})"


def raised_at(exc: BaseException) -> str:
    """``file.py:line in function``: the innermost frame of ``exc`` outside torch (the plugin's own code)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(TORCH_DIR)]
    return f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else "inside torch"


def _scalar_problem(value: Any, what: str, trial: bool, needs_grad: bool = True) -> str | None:
    if not isinstance(value, Tensor):
        return f"{what} is not a tensor"
    if value.dim() != 0:
        return f"{what} is not a scalar (0-d) tensor: reduce it, e.g. with .mean()"
    if not value.is_floating_point():
        return f"{what} is not floating-point"
    if needs_grad and torch.is_grad_enabled() and not value.requires_grad:
        return f"{what} has no gradient (detached, or not computed from D's or G's output)"
    if trial and not bool(torch.isfinite(value)):
        return f"{what} is not finite on a trial batch at initialisation"
    return None


def _stats_problem(stats: Any, trial: bool) -> str | None:
    if stats is None:
        return None
    if not isinstance(stats, dict):
        return "its stats are not a dict"
    for key, v in stats.items():
        if not isinstance(key, str):
            return f"its stats have a key {key!r} that is not a string"
        if isinstance(v, Tensor) and v.numel() != 1 or not isinstance(v, (Tensor, numbers.Real)):
            return f"its stat '{key}' is not a scalar ({summary(v)})"
        if trial and not bool(torch.isfinite(torch.as_tensor(v, dtype=torch.float32))):
            return f"its stat '{key}' is not finite on a trial batch at initialisation"
    return None


def _problem(out: Any, kind: str, trial: bool, needs_grad: bool = True) -> str | None:
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        return "not a pair"
    value, stats = out
    what = "its loss" if kind == "losses" else "its penalty"
    skipped = kind == "regularizers" and value is None
    return (None if skipped else _scalar_problem(value, what, trial, needs_grad)) or _stats_problem(stats, trial)


def _checked_call(kind: str, method, args: tuple, kwargs: dict, trial: bool, needs_grad: bool) -> tuple[Any, Any]:
    owner = getattr(method, "__self__", method)  # the component whose bound method this is
    try:
        out = method(*args, **kwargs)
    except GankitError:
        raise
    except Exception as exc:
        if not trial:  # during training a plugin's exception keeps its traceback (it may be D's, or memory)
            raise
        raise ContractError(f"{component(owner, kind)} failed in {source_of(method)} on a trial batch: "
                            f"{type(exc).__name__}: {exc} (at {raised_at(exc)})", kind, type(owner)) from None
    problem = _problem(out, kind, trial, needs_grad)
    if problem is not None:
        raise ContractError(f"{component(owner, kind)} broke its contract: {source_of(method)} returned "
                            f"{summary(out)}; {problem}. Expected {EXPECTED[kind]}", kind, type(owner),
                            nonfinite="not finite" in problem)
    return out[0], out[1]


def call_loss(method, *args: Any, trial: bool = False, needs_grad: bool = True,
              **kwargs: Any) -> tuple[Tensor, dict | None]:
    """``method(*args, **kwargs)``, a loss's ``d_loss`` or ``g_loss``; a ContractError unless ``(loss, stats)``.

    ``needs_grad``: whether the player being updated has weights to train (a frozen one's loss has no gradient)."""
    return _checked_call("losses", method, args, kwargs, trial, needs_grad)


def call_penalty(method, *args: Any, trial: bool = False, needs_grad: bool = True,
                 **kwargs: Any) -> tuple[Tensor | None, dict | None]:
    """``method(*args, **kwargs)``, a regulariser's ``penalty``; a ContractError unless ``(penalty or None, stats)``."""
    return _checked_call("regularizers", method, args, kwargs, trial, needs_grad)
