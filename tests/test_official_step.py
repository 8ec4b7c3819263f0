"""The GAN step's shape, piece by piece: what the step-parity goldens check as a whole, here one rule at a time.

Phase order (``train.order``), a fresh z per phase and G's own real batch
(``train.g_step: fresh``), fake labels (paired for a pairing loss, else from
the dataset's labels), R1/R2 from the loss's own D pass, the other player
frozen, ADA's p moved after the iteration from every real pass's signs, and
``train.tf32`` (off by default, recorded, shown by ``gankit validate``).
"""

import pytest
import torch

from gankit.augment.adaptive import AdaptiveP
from gankit.core.errors import GankitError
from gankit.recipe import validate
from gankit.rundir.checkpoint import load_checkpoint
from gankit.training.feeding import Latents
from gankit.training.trainer import Trainer, train
from helpers import gankit


class Recording(Latents):
    """The run's latents, with every request remembered as (kind, phase, rows)."""

    def __init__(self, inner):
        self.__dict__.update(inner.__dict__)
        self.asked = []

    def z(self, phase, n):
        self.asked.append(("z", phase, n))
        return super().z(phase, n)

    def labels(self, phase, n):
        self.asked.append(("labels", phase, n))
        return super().labels(phase, n)


def started(recipe: dict) -> Trainer:
    trainer = Trainer(validate(recipe))
    trainer.start()
    return trainer


def finish(trainer: Trainer) -> None:
    trainer.job.lock.release()


def sg2_tiny(tiny, **train) -> dict:
    """The tiny StyleGAN2-ADA recipe's step on a 2-step budget."""
    import yaml

    from helpers import REPO

    raw = yaml.safe_load((REPO / "recipes" / "stylegan2_tiny.yaml").read_text())
    raw.update(out_dir=tiny["out_dir"], device="cpu", log={"progress": "none"}, eval={"metrics": []})
    raw["data"]["batch_size"] = 8
    raw["train"].update(steps=2, sample_every=None, checkpoint_every=None, **train)
    return raw


def guard_order(trainer: Trainer, steps: int = 1) -> list[str]:
    seen = []
    trainer.job.gan_step.guard = lambda player, values, module: seen.append(player) or True
    trainer.train_steps(steps)
    return seen


def test_stylegan2_runs_gmain_greg_dmain_dreg_each_on_its_own_z(tiny):
    trainer = started(sg2_tiny(tiny))
    step = trainer.job.gan_step
    step.latents = Recording(step.latents)
    # Step 0: every lazy penalty is due (every 4): Gmain, Greg, Dmain, Dreg.
    assert guard_order(trainer) == ["generator", "generator", "discriminator", "discriminator"]
    assert [ph for k, ph, _ in step.latents.asked if k == "z"] == ["Gmain", "Greg", "Dmain"]
    assert guard_order(trainer) == ["generator", "discriminator"]  # step 1: neither lazy penalty is due
    finish(trainer)


def test_the_tutorial_order_is_d_then_g_on_the_same_fakes(tiny):
    trainer = started(tiny)
    step = trainer.job.gan_step
    step.latents = Recording(step.latents)
    assert guard_order(trainer) == ["discriminator", "generator"]
    assert [ph for k, ph, _ in step.latents.asked if k == "z"] == ["Dmain"]  # G reuses D's fakes: no z of its own
    finish(trainer)


def test_g_first_needs_a_fresh_g_step(tiny):
    tiny["train"]["order"] = "g_first"
    with pytest.raises(GankitError, match="train.order: g_first runs G's update before D's.*g_step: fresh"):
        validate(tiny)


def relativistic(tiny, conditional: bool, **train) -> dict:
    tiny["loss"] = {"name": "relativistic"}
    tiny["train"].update(g_step="fresh", **train)
    if conditional:
        tiny["generator"] = {"name": "dcgan_cond", "nz": 8, "ngf": 8, "num_classes": 10}
        tiny["discriminator"] = {"name": "dcgan_projection", "ndf": 8, "num_classes": 10}
    return tiny


def test_a_fresh_g_step_with_rpgan_takes_its_own_real_batch_and_counts_only_ds(tiny):
    run_dir = train(validate(relativistic(tiny, False, steps=3, sample_every=None, checkpoint_every=None)))
    ck = load_checkpoint(run_dir)
    assert ck["images_seen"] == 3 * 16  # D's batches: the schedules' and EMA's clock, as the official cur_nimg
    assert ck["batch_in_epoch"] == 6  # two real batches a step: D's and G's


class Spy(torch.nn.Module):
    """G, remembering the labels it was asked for."""

    def __init__(self, G):
        super().__init__()
        self.G, self.calls = G, []
        self.nz, self.num_classes = G.nz, G.num_classes

    def forward(self, z, labels=None):
        self.calls.append(labels.clone())
        return self.G(z, labels)


def test_rpgan_fakes_have_their_paired_reals_classes(tiny):
    trainer = started(relativistic(tiny, True, steps=1))
    step = trainer.job.gan_step
    step.G = Spy(step.G)
    group = next(iter(trainer.job.feeder.groups(lambda: True, lambda: False, lambda bad: None)))
    (d_real, d_labels), (g_real, g_labels) = group
    step(group, 0)
    assert len(step.G.calls) == 2
    assert torch.equal(step.G.calls[0], d_labels) and torch.equal(step.G.calls[1], g_labels)
    finish(trainer)


def test_other_losses_draw_fake_classes_from_the_datasets_labels():
    pool = torch.tensor([3] * 90 + [7] * 10)
    latents = Latents(8, 10, pool, torch.Generator().manual_seed(0))
    drawn = torch.cat([latents.labels("Dmain", 100) for _ in range(20)])
    assert set(drawn.tolist()) == {3, 7} and 0.85 < (drawn == 3).float().mean() < 0.95
    uniform = Latents(8, 10, None, torch.Generator().manual_seed(0)).labels("Gmain", 2000)
    assert set(uniform.tolist()) == set(range(10))  # a dataset that does not list its labels


def test_latents_are_the_whole_steps_each_process_taking_its_block():
    whole = Latents(4, 10, torch.arange(10), torch.Generator().manual_seed(1))
    parts = [Latents(4, 10, torch.arange(10), torch.Generator().manual_seed(1), rank=r, world=2) for r in range(2)]
    z = whole.z("Dmain", 6)
    assert torch.equal(torch.cat([p.z("Dmain", 3) for p in parts]), z)
    labels = whole.labels("Gmain", 6)
    assert torch.equal(torch.cat([p.labels("Gmain", 3) for p in parts]), labels)


class Counting(torch.nn.Module):
    def __init__(self, D):
        super().__init__()
        self.D, self.calls = D, 0

    def forward(self, x, labels=None):
        self.calls += 1
        return self.D(x)


def test_r1_and_r2_come_from_the_losss_own_pass_and_the_other_player_is_frozen(tiny):
    recipe = relativistic(tiny, False, steps=1)
    recipe["regularizers"] = [{"name": "r1", "gamma": 1.0}, {"name": "r2", "gamma": 1.0}]
    trainer = started(recipe)
    step = trainer.job.gan_step
    counting = Counting(step.seen_by_d)
    step.seen_by_d = counting
    grads = []
    step.guard = lambda player, values, module: grads.append(
        (player, [p.grad.clone() for p in step.D.parameters()])) or True
    stats = step(next(iter(trainer.job.feeder.groups(lambda: True, lambda: False, lambda bad: None))), 0)
    assert counting.calls == 4  # D's update: real and fake, the penalties from them; G's: fake and real
    assert stats["r1"] > 0 and stats["r2"] > 0
    (_, after_d), (_, after_g) = grads
    assert all(torch.equal(a, b) for a, b in zip(after_d, after_g))  # G's update added nothing to D's gradients
    finish(trainer)


def test_ada_moves_p_after_the_iteration_from_every_real_pass(tiny):
    recipe = sg2_tiny(tiny)
    recipe["augment"].update(interval=1, kimg=1, target=-1.0)  # r_t is above it: p moves up
    trainer = started(recipe)
    step = trainer.job.gan_step
    seen_p = []
    step.guard = lambda player, values, module: seen_p.append(step.augment.p) or True
    controller = step.augment.controller
    stepped = []
    real_step = controller.step
    controller.step = lambda images=None, reduce=None: (stepped.append((controller.num_signs, images)),
                                                         real_step(images, reduce))[1]
    trainer.train_steps(1)
    assert set(seen_p) == {0.0}  # p held during the iteration's four updates
    assert stepped == [(16, 8)]  # Dmain's and Dreg's real passes (8 + 8 signs); p moves by 8 images
    assert step.augment.p == pytest.approx(8 / 1000)
    finish(trainer)


def test_an_older_controller_state_loads():
    ada = AdaptiveP()
    ada.load_state_dict({"p": 0.1, "sign_sum": 2.0, "num_images": 4, "num_steps": 1, "num_updates": 3, "rt": 0.5})
    assert (ada.num_signs, ada.num_images, ada.p) == (4, 4, 0.1)


def test_tf32_is_off_by_default_recorded_and_shown(tiny, tmp_path):
    torch.backends.cudnn.allow_tf32 = True  # torch's own default
    trainer = started(tiny)
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert trainer.job.info["tf32"] == {"matmul": False, "cudnn": False}
    assert trainer.job.info["batch"] == {"step": 16, "per_process": 16, "per_round": 16, "accumulate": 1}
    finish(trainer)
    tiny["train"]["tf32"] = True
    trainer = started(tiny)
    assert trainer.job.info["tf32"] == {"matmul": True, "cudnn": True}
    finish(trainer)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    code, out, err = gankit("validate", "recipes/r3gan_cifar10_cond.yaml", "train.accumulate=4")
    assert code == 0, err
    assert "  tf32: false\n" in out and "  accumulate: 4\n" in out and "  g_step: fresh\n" in out
    assert "  mirror: true\n" in out
