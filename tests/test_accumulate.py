"""``data.batch_size`` is the step's whole batch; ``train.accumulate`` splits each process's share into rounds.

One process accumulating 2 rounds trains exactly as 2 processes (torchrun,
gloo on the CPU) do with the same recipe: the same images in each round and
rank (each step's global batch is the next run of the data order, rank r
and round r taking its r-th block), the same latents (drawn for the whole
step, each part taking its block), and gradients that add up alike:
g0/2 + g1/2 in one process, (g0 + g1)/2 through DDP, equal in floating
point since halving is exact. So the weights, Adam's moments and the EMA
are bit-identical after K steps.
"""

import pytest
import torch

from gankit.core.errors import GankitError
from gankit.recipe import validate
from gankit.recipe.batching import split_batch
from gankit.rundir.checkpoint import load_checkpoint
from helpers import only_run_dir, states_equal
from test_ddp import WORKER, torchrun

EXACT = ("generator", "discriminator", "optim_g", "optim_d", "ema", "images_seen", "epoch", "batch_in_epoch")


@pytest.fixture
def r3gan_tiny(tiny):
    """A small R3GAN (no batch statistics anywhere) with R1 + R2, G's own real batch and an EMA."""
    tiny.update(generator={"name": "r3gan", "nz": 8, "width": 16, "blocks": 1},
                discriminator={"name": "r3gan", "width": 16, "blocks": 1},
                loss={"name": "relativistic"},
                regularizers=[{"name": "r1", "gamma": 0.1}, {"name": "r2", "gamma": 0.1}])
    tiny["data"].update(batch_size=16, drop_last=True)
    tiny["optim"] = {"g": {"name": "adam", "lr": 2e-4, "betas": [0.0, 0.9]},
                     "d": {"name": "adam", "lr": 2e-4, "betas": [0.0, 0.9]}}
    tiny["train"].update(steps=3, g_step="fresh", ema={"half_life_kimg": 0.05, "rampup": None},
                         sample_every=None, checkpoint_every=None)
    return tiny


@pytest.mark.slow
def test_one_process_accumulating_two_rounds_equals_two_processes(r3gan_tiny, write_recipe, tmp_path):
    path = write_recipe(r3gan_tiny)
    one = torchrun(str(WORKER), str(path), str(tmp_path / "one"), f"out_dir={tmp_path / 'a'}", "train.accumulate=2",
                   nproc=1)
    assert one.returncode == 0, one.stderr[-3000:]
    two = torchrun(str(WORKER), str(path), str(tmp_path / "two"), f"out_dir={tmp_path / 'b'}", nproc=2)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = load_checkpoint(only_run_dir(tmp_path / "a")), load_checkpoint(only_run_dir(tmp_path / "b"))
    assert a["images_seen"] == b["images_seen"] == 3 * 16
    for key in EXACT:
        assert states_equal(a[key], b[key]), key
    recorded = (only_run_dir(tmp_path / "a") / "recipe.yaml").read_text()
    assert "per_round: 8" in recorded and "accumulate: 2" in recorded  # the split is in the provenance


def test_the_batch_splits_over_processes_then_rounds():
    assert split_batch(512, 8, 1) == (64, 64) and split_batch(512, 1, 4) == (512, 128)
    assert split_batch(512, 2, 2) == (256, 128)
    with pytest.raises(GankitError, match=r"data.batch_size: 100 images do not split evenly into 8 processes × "
                                          r"train.accumulate: 3 rounds; use a multiple of 24 \(e.g. 96\)"):
        split_batch(100, 8, 3)


def test_a_batch_that_does_not_split_into_the_rounds_is_a_recipe_error(r3gan_tiny):
    r3gan_tiny["train"]["accumulate"] = 3
    with pytest.raises(GankitError, match="do not split evenly into train.accumulate: 3 rounds"):
        validate(r3gan_tiny)


def grads_of(recipe: dict, mode: str) -> list:
    """Every update's gradients (player, {name: grad}) of one step of ``recipe`` in accumulate_mode ``mode``."""
    from gankit.training.trainer import Trainer

    recipe = {**recipe, "train": {**recipe["train"], "steps": 1, "accumulate": 2, "accumulate_mode": mode}}
    trainer = Trainer(validate(recipe))
    trainer.start()
    seen = []
    trainer.job.gan_step.guard = lambda player, values, module: seen.append(
        (player, {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None})) or True
    trainer.train_steps(1)
    trainer.job.lock.release()
    return seen


def test_sum_mode_adds_the_rounds_gradients_as_stylegan2_ada(r3gan_tiny):
    """StyleGAN2-ADA's rounds each back-propagate their own mean: with 2 rounds the gradient is twice the mean's."""
    mean, summed = grads_of(r3gan_tiny, "mean"), grads_of(r3gan_tiny, "sum")
    assert [p for p, _ in mean] == [p for p, _ in summed] == ["discriminator", "generator"]
    # D's update, the step's first (G's then meets a D that Adam's eps moved a hair differently).
    (_, m), (_, s) = mean[0], summed[0]
    assert m.keys() == s.keys() and m
    for name in m:
        assert torch.equal(s[name], 2 * m[name]), name


def test_a_run_may_resume_with_more_rounds(r3gan_tiny):
    """The same batch in more rounds (a resume on a smaller GPU), and TF32, may change on --resume."""
    from gankit.training.state import prepare_resume
    from gankit.training.trainer import Trainer, train

    r3gan_tiny["train"]["steps"] = 1
    run_dir = train(validate(r3gan_tiny))
    recipe, ck, run_dir = prepare_resume(run_dir, ["train.steps=2", "train.accumulate=4", "train.tf32=true"])
    assert (recipe.train.accumulate, recipe.train.tf32) == (4, True)
    Trainer(recipe, resume=ck, run_dir=run_dir).run()
    assert load_checkpoint(run_dir)["images_seen"] == 2 * 16
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
