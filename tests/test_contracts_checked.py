"""Contracts checked before work, and during it: a loss or regulariser that returns what its contract does not
allow is named, with its file and line, by ``gankit validate`` and ``gankit run`` (exit 2, no traceback).

The trial step before a run (:func:`gankit.training.assemble.trial_step`) trains one step on throwaway copies:
it must change nothing of the run (weights, random streams, ADA's p), and every registered component and
shipped recipe must pass it. The same checks guard the training step, so a contract broken mid-run is
reported alike, and the run's last checkpoint is kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gankit.core.errors import GankitError
from gankit.core.plugins import get_host
from gankit.recipe import load_recipe, resolved, validate
from gankit.recipe.checked import call_loss
from gankit.recipe.load import dump
from gankit.rundir.checkpoint import load_checkpoint
from gankit.training.assemble import trial_step
from gankit.training.state import rng_state
from gankit.training.trainer import train
from helpers import REPO, gankit, only_run_dir, states_equal
from test_recipes_as_written import PAPER_SCALE

PARTS = '''
import torch
import gankit
from gankit.losses import GANLoss
from gankit.regularizers import Regularizer


class Bare(GANLoss):
    def d_loss(self, D, real, fake, **labels):
        return torch.nn.functional.softplus(-self.logits(D, real, None)).mean()

    def g_loss(self, D, fake, **labels):
        return torch.nn.functional.softplus(-self.logits(D, fake, None)).mean(), {}


class PerImage(GANLoss):
    def d_loss(self, D, real, fake, **labels):
        return torch.nn.functional.softplus(-self.logits(D, real, None)), {}

    def g_loss(self, D, fake, **labels):
        return torch.nn.functional.softplus(-self.logits(D, fake, None)).mean(), {}


class Detached(GANLoss):
    def d_loss(self, D, real, fake, **labels):
        return self.logits(D, real, None).mean().detach(), {}

    def g_loss(self, D, fake, **labels):
        return self.logits(D, fake, None).mean(), {}


class VectorStat(GANLoss):
    def d_loss(self, D, real, fake, **labels):
        r = self.logits(D, real, None)
        return r.mean(), {"d_real": r.detach()}

    def g_loss(self, D, fake, **labels):
        return -self.logits(D, fake, None).mean(), {}


class Raises(GANLoss):
    def d_loss(self, D, real, fake, **labels):
        return self.logits(D, real, None).mean() / 0 + {}["missing"], {}

    def g_loss(self, D, fake, **labels):
        return self.logits(D, fake, None).mean(), {}


class LateBare(GANLoss):
    """Keeps its contract for five G updates, then returns a bare tensor."""

    def __init__(self):
        self.calls = 0

    def d_loss(self, D, real, fake, **labels):
        return (torch.nn.functional.softplus(-self.logits(D, real, None)).mean()
                + torch.nn.functional.softplus(self.logits(D, fake, None)).mean()), {}

    def g_loss(self, D, fake, **labels):
        self.calls += 1
        loss = torch.nn.functional.softplus(-self.logits(D, fake, None)).mean()
        return loss if self.calls > 5 else (loss, {})


class NanPenalty(Regularizer):
    def penalty(self, D, real, fake, step, **labels):
        return self.logits(D, real, None).mean() * float("nan"), {}

    logits = staticmethod(GANLoss.logits)


@gankit.hookimpl
def gankit_register(registry):
    for name, cls in (("bare", Bare), ("per_image", PerImage), ("detached", Detached),
                      ("vector_stat", VectorStat), ("raises", Raises), ("late_bare", LateBare)):
        registry("losses").register(name, cls)
    registry("regularizers").register("nan_penalty", NanPenalty)
'''


def line_of(text: str, cls: str, method: str) -> int:
    """The line of ``def method`` inside ``class cls`` of ``PARTS`` as written to parts.py."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"class {cls}("))
    return next(i for i in range(start, len(lines)) if lines[i].strip().startswith(f"def {method}(")) + 1


@pytest.fixture
def parts(tiny, tmp_path):
    (tmp_path / "parts.py").write_text(PARTS)
    tiny["plugins"] = ["parts.py"]
    return tmp_path / "parts.py"


BROKEN = [  # (recipe section, component, class, method, what the message says)
    ("loss", "bare", "Bare", "d_loss", "returned a float32 tensor of shape () = "),
    ("loss", "per_image", "PerImage", "d_loss", "its loss is not a scalar (0-d) tensor"),
    ("loss", "detached", "Detached", "d_loss", "its loss has no gradient"),
    ("loss", "vector_stat", "VectorStat", "d_loss",
     "its stat 'd_real' is not a scalar (a float32 tensor of shape (2,))"),
    ("regularizers", "nan_penalty", "NanPenalty", "penalty", "its penalty is not finite on a trial batch"),
]


@pytest.mark.parametrize("section, name, cls, method, says", BROKEN, ids=[b[1] for b in BROKEN])
def test_a_broken_contract_fails_validate_naming_the_component_its_line_and_the_expected_return(
        tiny, parts, write_recipe, section, name, cls, method, says):
    tiny[section] = {"name": name} if section == "loss" else [{"name": name}]
    code, out, err = gankit("validate", write_recipe(tiny))
    assert code == 2 and "Traceback" not in err and out == "", err
    kind = "loss" if section == "loss" else "regularizer"
    where = f"{parts}:{line_of(PARTS, cls, method)}"
    assert f"error: {kind} '{name}' broke its contract: {cls}.{method} ({where}) " in err, err
    assert says in err, err
    assert ("Expected (loss, stats)" if section == "loss" else "Expected (penalty, stats)") in err, err


def test_a_bare_tensor_is_said_to_be_not_the_pair_expected(tiny, parts, write_recipe):
    tiny["loss"] = {"name": "bare"}
    code, _, err = gankit("run", write_recipe(tiny))
    assert code == 2 and "Traceback" not in err
    assert "; not a pair. Expected (loss, stats): a 0-d floating-point loss tensor with a gradient" in err
    assert not list(Path(tiny["out_dir"]).glob("*/*")), "the trial step runs before the run directory is made"


def test_a_component_that_raises_in_the_trial_step_is_named_with_the_line_that_raised(tiny, parts, write_recipe):
    tiny["loss"] = {"name": "raises"}
    code, _, err = gankit("validate", write_recipe(tiny))
    assert code == 2 and "Traceback" not in err
    raising = line_of(PARTS, "Raises", "d_loss") + 1
    assert f"loss 'raises' failed in Raises.d_loss ({parts}:{raising - 1}) on a trial batch" in err
    assert f"KeyError: 'missing' (at {parts}:{raising} in d_loss)" in err


def test_a_contract_broken_mid_run_stops_it_like_any_clean_stop(tiny, parts, write_recipe):
    tiny["loss"] = {"name": "late_bare"}
    tiny["train"].update(steps=8, checkpoint_every=2, sample_every=2)
    path = write_recipe(tiny)
    code, _, err = gankit("validate", path)  # the trial step is the loss's first step: it keeps its contract
    assert code == 0, err
    code, _, err = gankit("run", path)
    assert code == 2 and "Traceback" not in err, err
    assert "error: at training step 6, loss 'late_bare' broke its contract: LateBare.g_loss" in err
    assert "Expected (loss, stats)" in err
    run_dir = only_run_dir(tiny["out_dir"])
    assert f"the last checkpoint (step 4) is kept: {run_dir / 'checkpoints' / 'last.pt'}" in err
    assert load_checkpoint(run_dir)["step"] == 4
    # the scheduled grids, and one of the step the run got to (as at any failure), beside its real images
    assert sorted(p.name for p in (run_dir / "samples").glob("*.png")) == [
        "real.png", "step_0000002.png", "step_0000004.png", "step_0000005.png"]
    end = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    assert end.get("status") == "failed" and "at training step 6" in json.dumps(end), end


def test_during_training_the_checks_read_no_values_and_leave_nan_to_the_non_finite_guard():
    class NanLoss:
        def d_loss(self, x):
            return x.sum() * float("nan"), {"d_real": torch.tensor(float("inf"))}

    x = torch.ones(3, requires_grad=True)
    loss, stats = call_loss(NanLoss().d_loss, x)  # training: shapes and flags only
    assert loss.isnan() and stats["d_real"].isinf()
    with pytest.raises(GankitError, match="its loss is not finite on a trial batch"):
        call_loss(NanLoss().d_loss, x, trial=True)


def test_a_correct_recipe_validates_as_before(tiny, write_recipe):
    path = write_recipe(tiny)
    code, out, err = gankit("validate", path)
    assert code == 0 and "error" not in err, err
    assert out == f"# {path}: valid\n" + dump(resolved(load_recipe(path)))


@pytest.fixture
def stateful(tiny):
    """The tiny recipe with state the trial step could disturb: ADA's p, lazy R1, GP's draws, EMA, d_steps."""
    tiny["data"]["batch_size"] = 8
    tiny["train"].update(steps=3, d_steps=2, ema={"decay": 0.9, "rampup": 0.5}, sample_every=None, log_every=3)
    tiny["regularizers"] = [{"name": "r1", "gamma": 1.0, "every": 2}, {"name": "gp", "weight": 1.0}]
    tiny["augment"] = {"name": "ada", "target": 0.6, "interval": 1, "kimg": 1, "p": 0.2}
    tiny["loss"] = {"name": "hinge"}
    return tiny


def test_the_trial_step_puts_every_random_stream_back(stateful):
    recipe = validate(stateful)
    torch.manual_seed(123)
    before = rng_state()
    trial_step(recipe)
    assert states_equal(before, rng_state())


def test_a_run_through_the_cli_trial_step_included_is_the_run_without_it(stateful, write_recipe, tmp_path):
    code, _, err = gankit("run", write_recipe(stateful))
    assert code == 0, err
    with_trial = load_checkpoint(only_run_dir(stateful["out_dir"]))
    stateful["out_dir"] = str(tmp_path / "direct")
    without = load_checkpoint(train(validate(stateful)))  # the Python API: no trial step
    assert with_trial["augment_state"]["p"] != 0.2  # ADA moved p: the comparison below covers it
    for key in ("generator", "discriminator", "optim_g", "optim_d", "ema", "augment_state", "regularizer_states",
                "rng"):
        assert states_equal(with_trial[key], without[key]), key


REG = get_host().registry
COMPONENTS = ([("loss", n) for n in REG("losses").list()]
              + [("regularizers", n) for n in REG("regularizers").list()
                 if getattr(REG("regularizers").get(n), "player", "discriminator") == "discriminator"]
              + [("augment", n) for n in REG("augmentations").list()])


@pytest.mark.parametrize("section, name", COMPONENTS, ids=[f"{s}:{n}" for s, n in COMPONENTS])
def test_every_registered_loss_regulariser_and_augmentation_keeps_its_contract_in_the_trial_step(tiny, section, name):
    tiny[section] = [{"name": name}] if section == "regularizers" else {"name": name}
    trial_step(validate(tiny))


# A paper-scale recipe's trial step takes a minute on a CPU: tests/test_recipes_as_written.py (the slow tier) runs
# each of them through `gankit run`, trial step included.
RECIPES = [p for p in sorted((REPO / "recipes").glob("*.yaml")) if p.stem not in PAPER_SCALE]


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_shipped_recipe_passes_the_trial_step(path):
    trial_step(load_recipe(path))
