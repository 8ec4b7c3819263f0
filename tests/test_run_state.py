"""The run state: one home for everything a checkpoint holds (gankit/training/state.py).

- a checkpoint in the layout gankit wrote before the run state (format 2,
  and format 1 without the checksum wrapper) resumes bit for bit;
- a component that declares a resumable counter gets it saved and restored,
  with no edit anywhere else;
- ``best.pt`` follows ``eval.best_metric`` (default: the first metric
  measured), in the direction the metric declares.
"""

from __future__ import annotations

import copy

import pytest
import torch

import gankit
from gankit.recipe import validate
from gankit.regularizers import R1Penalty
from gankit.rundir import checkpoint as ckpt_io
from gankit.rundir.checkpoint import load_checkpoint
from gankit.training.state import Counters, prepare_resume
from gankit.training.trainer import Trainer, train
from helpers import states_equal

# The keys of a checkpoint as gankit wrote it before the run state (format 2): written out here, so that the
# fixture below is that layout and not whatever the code writes today.
FORMAT_2_KEYS = {
    "format", "gankit_version", "run_id", "recipe", "step", "epoch", "batch_in_epoch", "images_seen", "best_fid",
    "skipped_images", "plugin_files", "generator", "discriminator", "optim_g", "optim_d", "scaler_g", "scaler_d",
    "ema", "rng", "skipped_steps", "augment_state", "regularizer_states",
}
EXACT = ("generator", "discriminator", "optim_g", "optim_d", "ema", "augment_state", "step", "epoch",
         "batch_in_epoch", "images_seen", "skipped_steps")


@pytest.fixture
def everything(tiny):
    """The tiny recipe with every part that has state: EMA, ADA's controller, lazy R1, GP's draws, d_steps."""
    tiny["data"]["batch_size"] = 8
    tiny["train"].update(steps=5, d_steps=2, ema={"decay": 0.9, "rampup": 0.5}, sample_every=None,
                         checkpoint_every=None, log_every=5)
    tiny["regularizers"] = [{"name": "r1", "gamma": 1.0, "every": 2}, {"name": "gp", "weight": 1.0}]
    tiny["augment"] = {"name": "ada", "target": 0.6, "interval": 1, "kimg": 1}
    tiny["loss"] = {"name": "hinge"}
    return tiny


def same_run(whole: dict, resumed: dict) -> None:
    for key in EXACT:
        assert states_equal(whole[key], resumed[key]), key
    # The loader's generator only seeds worker processes and draws once more on a mid-epoch resume.
    assert states_equal({k: v for k, v in whole["rng"].items() if k != "loader"},
                        {k: v for k, v in resumed["rng"].items() if k != "loader"})


def as_written_before(ck: dict) -> dict:
    """``ck`` in the layout of a checkpoint written before the run state (what that code wrote, key for key)."""
    old = {k: v for k, v in ck.items() if k in FORMAT_2_KEYS}
    # The regularisers without state wrote None (they had no state_dict); the first, lazy R1, too.
    old["regularizer_states"] = [None for _ in ck["regularizer_states"]]
    assert set(old) == FORMAT_2_KEYS
    return old


@pytest.mark.parametrize("fmt", [2, 1])
def test_a_checkpoint_written_before_the_run_state_resumes_bit_exactly(everything, fmt):
    whole = load_checkpoint(train(validate(everything)))
    short = copy.deepcopy(everything)
    short["train"]["steps"] = 2
    half = train(validate(short))
    path = half / "checkpoints" / "last.pt"
    old = as_written_before(load_checkpoint(path))
    if fmt == 2:
        ckpt_io.atomic_save(old, path)
    else:  # format 1: the plain state, no checksum wrapper
        torch.save({**old, "format": 1}, path)
    recipe, ck, run_dir = prepare_resume(half, ["train.steps=5"])
    assert "loss_state" not in ck and "best" not in ck
    Trainer(recipe, resume=ck, run_dir=run_dir, overrides=["train.steps=5"]).run()
    resumed = load_checkpoint(half)
    assert resumed["step"] == 5 and resumed["augment_state"]["p"] > 0  # ADA's p moved, and resumed
    same_run(whole, resumed)


def test_an_older_best_fid_is_the_best_of_fid():
    counters = Counters()
    counters.load_state_dict({"step": 7, "best_fid": 12.5})
    assert counters.step == 7 and counters.best == {"metric": "fid", "value": 12.5}
    counters.load_state_dict({"step": 9, "best_fid": 12.5, "best": {"metric": "kid", "value": 0.1}})
    assert counters.best == {"metric": "kid", "value": 0.1}


class CountingR1(R1Penalty):
    """R1 with a resumable counter: the one edit a component needs (``resumable`` names it)."""

    resumable = ("penalties",)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.penalties = 0

    def penalty(self, *args, **kwargs):
        penalty, stats = super().penalty(*args, **kwargs)
        self.penalties += penalty is not None
        return penalty, stats


def test_a_component_s_resumable_counter_is_saved_and_restored_with_no_other_edit(everything):
    gankit.registry("regularizers").register("counting_r1", CountingR1)
    everything["regularizers"][0]["name"] = "counting_r1"
    whole = load_checkpoint(train(validate(everything)))
    assert whole["regularizer_states"][0] == {"penalties": 5}  # 10 D updates, lazy every 2
    short = copy.deepcopy(everything)
    short["train"]["steps"] = 2
    half = train(validate(short))
    assert load_checkpoint(half)["regularizer_states"][0] == {"penalties": 2}
    recipe, ck, run_dir = prepare_resume(half, ["train.steps=5"])
    trainer = Trainer(recipe, resume=ck, run_dir=run_dir, overrides=["train.steps=5"])
    trainer.run()
    assert trainer.job.gan_step.regularizers[0].penalties == 5
    resumed = load_checkpoint(half)
    assert resumed["regularizer_states"] == whole["regularizer_states"]
    same_run(whole, resumed)


# -- best.pt ---------------------------------------------------------------------------------
ROWS = [  # per evaluation (steps 2, 4, 6): kid, lower is better; is, higher is better
    [("kid", 0.5, False), ("is", 2.0, True)],
    [("kid", 0.3, False), ("is", 1.5, True)],
    [("kid", 0.4, False), ("is", 3.0, True)],
]


@pytest.fixture
def evaluated(tiny, monkeypatch):
    """The tiny recipe evaluated at steps 2, 4 and 6 by a stand-in evaluator giving :data:`ROWS`."""
    evaluations = iter(ROWS)

    class FakeEvaluator:
        skipped: dict = {}

        def __init__(self, recipe, device, dataset, **kwargs):
            pass

        def prepare(self, conditional=False):
            return []

        def due(self, step):
            return step % 2 == 0

        def evaluate(self, generate, nz, step, **kwargs):
            return [{"metric": m, "value": v, "higher_is_better": h} for m, v, h in next(evaluations)]

    import gankit.eval.evaluator

    monkeypatch.setattr(gankit.eval.evaluator, "Evaluator", FakeEvaluator)
    tiny["eval"] = {"metrics": ["kid", "is"]}
    tiny["train"].update(steps=6, checkpoint_every=None, sample_every=None)
    return tiny


@pytest.mark.parametrize("best_metric, step, best", [
    (None, 4, {"metric": "kid", "value": 0.3}),  # the first metric measured, lower is better
    ("is", 6, {"metric": "is", "value": 3.0}),  # named, higher is better
])
def test_best_pt_follows_eval_best_metric_in_its_direction(evaluated, best_metric, step, best):
    evaluated["eval"]["best_metric"] = best_metric
    run_dir = train(validate(evaluated))
    kept = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert kept["step"] == step and kept["best"] == best
    assert load_checkpoint(run_dir)["best"] == best


def test_best_metric_must_be_one_of_the_metrics(tiny):
    from gankit.core.errors import RecipeError

    tiny["eval"] = {"metrics": ["fid", "prdc"], "best_metric": "fdi"}
    with pytest.raises(RecipeError, match=r"eval.best_metric: 'fdi' is not one of eval.metrics \(fid, prdc\); "
                                          r"did you mean 'fid'\?"):
        validate(tiny)
    tiny["eval"]["best_metric"] = "prdc/recall"  # one of a metric's values
    assert validate(tiny).eval.best_metric == "prdc/recall"
