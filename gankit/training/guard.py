"""The non-finite guard: before each optimizer step, stop or skip an update whose loss or gradient is NaN/inf.

``health.on_nonfinite: stop`` ends the run (exit code 3) naming the loss
and the parameters whose gradients went non-finite, keeping the last good
checkpoint; ``skip`` drops that update with a counted warning. Under
torchrun every rank decides alike, or their weights would part.
"""

from __future__ import annotations

import torch

from gankit.training.distributed import unwrap
from gankit.training.nonfinite import TrainingStopped, all_finite, describe


class Guard:
    """Called by the GAN step as ``guard(player, values, module)``: apply this update?"""

    def __init__(self, job, reporter):
        self.job, self.reporter = job, reporter

    def __call__(self, player: str, values: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
        job = self.job
        if job.world.all(all_finite(values)):
            return True
        finding = describe(job.counters.step + 1, player, values, unwrap(module))
        if job.nonfinite.skip(finding):
            total = job.nonfinite.skipped
            self.reporter.event(finding.step, {"event": "skipped_step", **finding.evidence(), "total": total},
                                say=f"warning: {finding.summary()}; update skipped ({total} skipped so far)")
            return False
        opt = job.players.opt_d if player == "discriminator" else job.players.opt_g
        self.stop(*job.nonfinite.stop_reason(finding, opt.param_groups[0]["lr"]), finding.evidence())

    def stop(self, what: str, hint: str, evidence: dict) -> None:
        """Stop the run on a non-finite state, saying which checkpoint is kept."""
        job = self.job
        self.reporter.event(job.counters.step, {"event": "nonfinite", "message": what, **evidence, "action": "stop"})
        kept = (f"the last good checkpoint (step {job.last_saved_step}) is kept: {job.run_dir / 'checkpoints' / 'last.pt'}"
                if job.last_saved_step is not None else "no checkpoint was written yet")
        raise TrainingStopped(f"training stopped, non-finite values at {what}\n    {kept}"
                              + (f"\n    {hint}" if hint else ""), job.run_dir)
