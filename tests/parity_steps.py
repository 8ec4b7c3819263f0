"""Whole training iterations against the official code's (``*_step.pt`` in ../shared/parity): the shared part.

A family's test builds gankit's step from one of its shipped recipes, with
the golden configuration's sizes and values put in (the recipe's step
settings kept: order, g_step, accumulate_mode, its components), loads the
golden state, feeds the recorded inputs through the step's own doors (a
batch list, :class:`~gankit.training.feeding.ReplayedLatents`, and for
augmentation :class:`~gankit.augment.draws.ReplayedDraws`), and compares
the state after each iteration, tensor by tensor, with the tolerances of
../shared/parity/README.md.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import yaml

from gankit.core.plugins import get_host
from gankit.recipe import validate
from gankit.recipe.build import build_regularizers
from gankit.training.players import Players, Scheduled
from gankit.training.step import GANStep
from goldens import rel_inf, rel_l2
from helpers import REPO

# ../shared/parity/README.md, "Suggested tolerance for a port, per tensor": the strict one. (Its wider
# tolerance is for a kink event, a leaky-ReLU input within ~3e-6 of 0 taking the other sign; none occurs
# in the stored configurations, so no test here needs it.)
PARAMS, MOMENTS, LOSSES = 1e-5, 2e-4, 1e-5
CPU = torch.device("cpu")


def shipped(name: str) -> dict:
    """A shipped recipe as a dict, its evaluation off (nothing here measures)."""
    raw = yaml.safe_load((REPO / "recipes" / f"{name}.yaml").read_text())
    raw.update(device="cpu", eval={"metrics": []}, log={"progress": "none", "wandb": {"mode": "disabled"}})
    return raw


@dataclass
class Built:
    """gankit's step for a golden configuration, and what drives it."""

    recipe: object
    players: Players
    step: GANStep
    regularizers: list
    scheduled: Scheduled
    key_maps: dict = field(default_factory=dict)  # "G"/"D" -> {official key: gankit key or None}
    grads: list = field(default_factory=list)  # (player, {gankit name: grad}) of each applied update

    def capture(self, player, values, module) -> bool:
        """The step's guard: record each update's gradients just before its optimizer step; apply it."""
        self.grads.append((player, {n: p.grad.detach().clone() for n, p in module.named_parameters()
                                    if p.grad is not None}))
        return True


def build(raw: dict) -> Built:
    """Players, regularisers, the recipe's GANStep and schedules, as a run assembles them (no data, no run dir)."""
    recipe = validate(copy.deepcopy(raw))
    regularizers = build_regularizers(recipe)
    players = Players.build(recipe, CPU, regularizers)
    step = GANStep.from_recipe(recipe, players, regularizers, CPU)
    built = Built(recipe, players, step, regularizers, Scheduled(recipe, players, step, get_host().registry))
    step.guard = built.capture
    return built


def load_optimizer(opt: torch.optim.Optimizer, module: torch.nn.Module, state: dict, mapping: dict) -> None:
    """Put the golden Adam state (official parameter names) into ``opt`` for ``module``'s parameters."""
    params = dict(module.named_parameters())
    opt.state.clear()
    for name, s in state.items():
        p = params[mapping[name]]
        opt.state[p] = {"step": torch.tensor(float(s["step"])), "exp_avg": s["exp_avg"].clone(),
                        "exp_avg_sq": s["exp_avg_sq"].clone()}


def differences(ours: dict, theirs: dict, mapping: dict, metric=rel_inf) -> dict[str, float]:
    """{official key: difference} for every golden tensor that has a gankit counterpart."""
    return {k: metric(ours[mapping[k]], v) for k, v in theirs.items() if mapping.get(k) is not None}


def moments(opt: torch.optim.Optimizer, module: torch.nn.Module, theirs: dict, mapping: dict) -> dict:
    """{'exp_avg': {name: rel_inf}, 'exp_avg_sq': ..., 'exp_avg_l2': ..., 'step': {name: |Δstep|}}."""
    params = dict(module.named_parameters())
    out = {"exp_avg": {}, "exp_avg_sq": {}, "exp_avg_l2": {}, "exp_avg_sq_l2": {}, "step": {}}
    for name, s in theirs.items():
        mine = opt.state.get(params[mapping[name]], {})
        if not mine:
            out["step"][name] = float(s["step"])  # the official optimizer stepped it, gankit did not
            continue
        out["step"][name] = abs(float(mine["step"]) - float(s["step"]))
        for key in ("exp_avg", "exp_avg_sq"):
            out[key][name] = rel_inf(mine[key], s[key])
            out[f"{key}_l2"][name] = rel_l2(mine[key], s[key])
    return out


def report(label: str, groups: dict[str, dict[str, float]]) -> dict[str, tuple[float, str]]:
    """{group: (worst, where)}, printed (``pytest -s`` shows the table)."""
    table = {g: (max(v.values()), max(v, key=v.get)) if v else (0.0, "") for g, v in groups.items()}
    print(f"\n{label}: " + ", ".join(f"{g} {w:.1e}" for g, (w, _) in table.items()))
    return table
