"""The non-finite guard: before each optimizer step, stop or skip an update whose loss or gradient is NaN/inf.

The GAN step calls :class:`Guard` on each player's update before the
optimizer applies it: :func:`all_finite` is one fused ``isfinite`` over the
loss statistics and the gradient norm (a single host sync, as AMP's
GradScaler does before its ``step``). Only when that fails does
:func:`describe` look at each value and each parameter, to name them.

``health.on_nonfinite: stop`` ends the run (exit code 3) naming the loss
and the parameters whose gradients went non-finite, keeping the last good
checkpoint; ``skip`` drops that update with a counted warning
(:class:`NonFinitePolicy`). Under torchrun every rank decides alike, or
their weights would part. A run's weights are checked once more before each
checkpoint (:func:`weights_finite`): a bad state never overwrites a good one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from gankit.training.distributed import unwrap

MAX_NAMED = 5  # parameters named in a message; the evidence in metrics.jsonl lists more


class TrainingStopped(Exception):
    """The run was stopped because its state went non-finite; the last good checkpoint is kept.

    Exit code 3 through ``gankit run`` (2 is a user's mistake, 130/143 an interrupt).
    """

    exit_code = 3

    def __init__(self, message: str, run_dir=None):
        self.run_dir = run_dir
        super().__init__(message)


def all_finite(values: dict[str, Tensor]) -> bool:
    """Whether every value is finite: one fused check, one host sync."""
    if not values:
        return True
    try:
        flat = torch.stack(list(values.values()))  # the usual case: 0-d tensors on one device
    except (RuntimeError, TypeError):  # a loss reporting other shapes, devices or Python numbers
        parts = [torch.as_tensor(v).detach().reshape(-1).float().cpu() for v in values.values()]
        flat = torch.cat(parts)
    return bool(torch.isfinite(flat).all())


def _state_tensors(module: nn.Module):
    """Parameters and floating-point buffers (BatchNorm's running statistics): what a checkpoint keeps."""
    yield from module.named_parameters()
    yield from ((n, b) for n, b in module.named_buffers() if b.is_floating_point())


def weights_finite(*modules: nn.Module) -> bool:
    """Whether every parameter and floating buffer of ``modules`` is finite (one host sync).

    Not through a norm: finite BatchNorm statistics of 1e24 overflow a float32 norm.
    """
    flags = [torch.isfinite(t.detach()).all() for m in modules for _, t in _state_tensors(m)]
    return not flags or bool(torch.stack(flags).all())


def _nonfinite_params(module: nn.Module, grads: bool) -> list[str]:
    names = []
    for name, p in module.named_parameters():
        t = p.grad if grads else p
        if t is not None and not bool(torch.isfinite(t).all()):
            names.append(name)
    return names


@dataclass
class Finding:
    """What was non-finite in one player's update at one step."""

    step: int
    player: str  # "discriminator" or "generator"
    values: dict[str, float]  # the non-finite loss statistics (e.g. loss_d: nan)
    grads: list[str] = field(default_factory=list)  # parameters whose gradient is non-finite
    weights: list[str] = field(default_factory=list)  # parameters whose value is already non-finite

    def evidence(self) -> dict:
        return {"player": self.player, "values": {k: str(v) for k, v in self.values.items()},
                "gradients": self.grads[:50], "weights": self.weights[:50]}

    def summary(self) -> str:
        parts = []
        if self.values:
            parts.append(", ".join(f"{k} = {v}" for k, v in self.values.items()))
        for what, names in (("gradient", self.grads), ("weights", self.weights)):
            if names:
                more = f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else ""
                parts.append(f"non-finite {what} of {', '.join(names[:MAX_NAMED])}{more}")
        if not parts:  # every gradient finite, but their norm overflowed
            parts.append("the gradient norm overflowed (gradients beyond float range)")
        return f"step {self.step}, {self.player} update: " + "; ".join(parts)


def describe(step: int, player: str, values: dict[str, Tensor], module: nn.Module) -> Finding:
    """The slow path, run only after :func:`all_finite` failed: name every culprit."""
    bad = {}
    for name, v in values.items():
        t = torch.as_tensor(v).detach().float()
        if not bool(torch.isfinite(t).all()):
            bad[name] = t.reshape(-1)[~torch.isfinite(t.reshape(-1))][0].item()
    return Finding(step, player, bad, _nonfinite_params(module, grads=True), _nonfinite_params(module, grads=False))


class NonFinitePolicy:
    """``health.on_nonfinite`` applied to findings: skip the update (counted), or stop the run."""

    def __init__(self, cfg):
        self.cfg = cfg  # the recipe's HealthSection
        self.skipped = 0  # updates skipped over the whole run (kept in checkpoints)
        self.in_a_row = 0

    def state_dict(self) -> dict:
        return {"skipped_steps": self.skipped}

    def load_state_dict(self, ck: dict) -> None:
        """From a whole checkpoint: its ``skipped_steps`` sit at the top level."""
        self.skipped = int(ck.get("skipped_steps", 0))

    def step_done(self) -> None:
        self.in_a_row = 0

    def skip(self, finding: Finding) -> bool:
        """True: skip this update (and count it); False: the run must stop."""
        c = self.cfg
        if c.on_nonfinite != "skip" or finding.weights or self.in_a_row >= c.max_skips_in_a_row:
            return False
        self.in_a_row += 1
        self.skipped += 1
        return True

    def stop_reason(self, finding: Finding, lr: float) -> tuple[str, str]:
        """What to say when stopping for ``finding``: (what happened, what to do)."""
        why = ("the weights are already non-finite, skipping cannot help" if finding.weights
               else f"{self.in_a_row} updates in a row were skipped" if self.cfg.on_nonfinite == "skip" else "")
        hint = f"lower optim.{finding.player[0]}.lr (now {lr:g}) or check the loss"
        if self.cfg.on_nonfinite == "stop":
            hint += "; or set health.on_nonfinite: skip to skip such updates"
        return finding.summary() + (f" ({why})" if why else ""), hint


def bad_weights(**modules: nn.Module) -> list[str]:
    """``generator.main.0.weight``-style names of non-finite parameters and buffers."""
    return [f"{what}.{name}" for what, m in modules.items() for name, t in _state_tensors(m)
            if not bool(torch.isfinite(t).all())]


class Guard:
    """Called by the GAN step as ``guard(player, values, module)``: apply this update?"""

    def __init__(self, job, reporter):
        self.job, self.reporter = job, reporter

    def __call__(self, player: str, values: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
        job, policy = self.job, self.job.nonfinite
        if job.world.all(all_finite(values)):
            return True
        finding = describe(job.counters.step + 1, player, values, unwrap(module))
        if policy.skip(finding):
            self.reporter.event(finding.step, {"event": "skipped_step", **finding.evidence(), "total": policy.skipped},
                                say=f"warning: {finding.summary()}; update skipped ({policy.skipped} skipped so far)")
            return False
        opt = job.players.opt_d if player == "discriminator" else job.players.opt_g
        self.stop(*policy.stop_reason(finding, opt.param_groups[0]["lr"]), finding.evidence())

    def stop(self, what: str, hint: str, evidence: dict) -> None:
        """Stop the run on a non-finite state, saying which checkpoint is kept."""
        job = self.job
        self.reporter.event(job.counters.step, {"event": "nonfinite", "message": what, **evidence, "action": "stop"})
        kept = (f"the last good checkpoint (step {job.last_saved_step}) is kept: {job.run_dir / 'checkpoints' / 'last.pt'}"
                if job.last_saved_step is not None else "no checkpoint was written yet")
        raise TrainingStopped(f"training stopped, non-finite values at {what}\n    {kept}"
                              + (f"\n    {hint}" if hint else ""), job.run_dir)
