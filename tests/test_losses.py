"""Every registered loss: its signs (each player's loss falls as it does better), labels, and formulas."""

import math

import pytest
import torch
from torch import nn

import gankit
from gankit.core.errors import GankitError
from gankit.losses import discriminate
from gankit.core.plugins import get_host

LOSSES = get_host().registry("losses").list()
# every registered loss with its defaults, plus the options that change the formula
VARIANTS = [(name, {}) for name in LOSSES] + [("relativistic", {"average": True})]
IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in VARIANTS]


class MeanLogit(nn.Module):
    """A fixed D: the logit is the image's mean pixel, so a batch's logits are set by its pixels."""

    def forward(self, x):
        return x.flatten(1).mean(1)


def images(*logits):
    """A batch whose MeanLogit logits are ``logits``."""
    return torch.tensor(logits, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 4, 4).contiguous()


def g_loss(loss, D, fake, real, **labels):
    """``loss.g_loss`` as the trainer calls it: with the real batch for a loss that declares it needs one."""
    extra = {"real": real, "real_labels": labels.get("real_labels")} if loss.needs_real_for_g else {}
    return loss.g_loss(D, fake, fake_labels=labels.get("fake_labels"), **extra)


def const(value, n=4):
    return images(*([value] * n))


@pytest.mark.parametrize("name,kwargs", VARIANTS, ids=IDS)
def test_d_loss_falls_as_d_separates_real_from_fake(name, kwargs):
    loss, D = gankit.registry("losses").build(name, **kwargs), MeanLogit()
    # real logits 0.5 + d, fake 0.5 - d: from indistinguishable to clearly separated
    # (around 0.5 so that LSGAN's 0/1 targets are approached, not overshot)
    values = [float(loss.d_loss(D, const(0.5 + d), const(0.5 - d))[0]) for d in (0.0, 0.2, 0.4)]
    assert values[0] > values[1] > values[2], values


@pytest.mark.parametrize("name,kwargs", VARIANTS, ids=IDS)
def test_g_loss_falls_as_d_is_fooled_more(name, kwargs):
    loss, D = gankit.registry("losses").build(name, **kwargs), MeanLogit()
    real = const(1.0)
    loss.d_loss(D, real, const(-0.5))  # the trainer's order: D's step, then G's on the same real batch
    values = [float(g_loss(loss, D, const(v), real)[0]) for v in (-0.5, 0.0, 0.5)]
    assert values[0] > values[1] > values[2], values


@pytest.mark.parametrize("name,kwargs", VARIANTS, ids=IDS)
def test_labels_reach_a_conditional_d_and_stats_are_detached(name, kwargs):
    seen = []

    class CondD(nn.Module):
        num_classes = 3

        def forward(self, x, labels):
            seen.append(labels.clone())
            return x.flatten(1).mean(1) + labels.float()

    loss, D = gankit.registry("losses").build(name, **kwargs), CondD()
    real_y, fake_y = torch.tensor([0, 1, 2, 0]), torch.tensor([2, 2, 1, 1])
    fake = const(0.1).requires_grad_(True)
    d, d_stats = loss.d_loss(D, const(0.3), fake.detach(), real_labels=real_y, fake_labels=fake_y)
    g, g_stats = g_loss(loss, D, fake, const(0.3), real_labels=real_y, fake_labels=fake_y)
    assert torch.isfinite(d) and torch.isfinite(g)
    assert any(torch.equal(s, real_y) for s in seen) and any(torch.equal(s, fake_y) for s in seen)
    g.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(not v.requires_grad for v in {**d_stats, **g_stats}.values())


def test_discriminate_calls_d_with_labels_only_when_given():
    class Both(nn.Module):
        def forward(self, x, labels=None):
            return torch.full((x.shape[0], 1), 1.0 if labels is None else 2.0)

    x = torch.zeros(3, 1, 2, 2)
    assert discriminate(Both(), x).tolist() == [1.0] * 3  # flattened to (N,)
    assert discriminate(Both(), x, torch.zeros(3, dtype=torch.long)).tolist() == [2.0] * 3


def sp(v):
    return math.log1p(math.exp(v))  # softplus


def sig(v):
    return 1 / (1 + math.exp(-v))


R, F_ = [2.0, -1.0], [0.5, -2.0]  # real and fake logits for the formula tests
mean = lambda xs: sum(xs) / len(xs)  # noqa: E731

FORMULAS = {
    # name: (kwargs, expected D loss, expected G loss) on logits R and F_
    "minimax": ({}, mean([sp(-r) for r in R]) + mean([sp(f) for f in F_]), -mean([sp(f) for f in F_])),
    "nonsaturating": ({}, mean([sp(-r) for r in R]) + mean([sp(f) for f in F_]), mean([sp(-f) for f in F_])),
    "hinge": ({}, mean([max(0, 1 - r) for r in R]) + mean([max(0, 1 + f) for f in F_]), -mean(F_)),
    "wgan": ({}, mean(F_) - mean(R), -mean(F_)),
    "lsgan": ({}, 0.5 * mean([(r - 1) ** 2 for r in R]) + 0.5 * mean([f**2 for f in F_]),
              0.5 * mean([(f - 1) ** 2 for f in F_])),
    "rpgan": ({}, mean([-math.log(sig(r - f)) for r, f in zip(R, F_)]),
              mean([-math.log(sig(f - r)) for r, f in zip(R, F_)])),
    "ragan": ({"average": True},
              0.5 * (mean([-math.log(sig(r - mean(F_))) for r in R]) + mean([-math.log(1 - sig(f - mean(R))) for f in F_])),
              0.5 * (mean([-math.log(sig(f - mean(R))) for f in F_]) + mean([-math.log(1 - sig(r - mean(F_))) for r in R]))),
}


@pytest.mark.parametrize("key", FORMULAS)
def test_each_loss_is_its_formula(key):
    kwargs, d_expected, g_expected = FORMULAS[key]
    name = "relativistic" if key in ("rpgan", "ragan") else key
    loss, D = gankit.registry("losses").build(name, **kwargs), MeanLogit()
    d, _ = loss.d_loss(D, images(*R), images(*F_))
    g, _ = g_loss(loss, D, images(*F_), images(*R))
    assert float(d) == pytest.approx(d_expected, rel=1e-5)
    assert float(g) == pytest.approx(g_expected, rel=1e-5)


def test_nonsaturating_is_the_tutorials_bce():
    D = MeanLogit()
    bce, ns = gankit.registry("losses").build("bce"), gankit.registry("losses").build("nonsaturating")
    assert torch.allclose(bce.d_loss(D, images(*R), images(*F_))[0], ns.d_loss(D, images(*R), images(*F_))[0])
    assert torch.allclose(bce.g_loss(D, images(*F_))[0], ns.g_loss(D, images(*F_))[0])


def test_wgan_reports_the_critic_not_probabilities():
    _, stats = gankit.registry("losses").build("wgan").d_loss(MeanLogit(), images(*R), images(*F_))
    assert set(stats) == {"loss_d", "critic_real", "critic_fake", "wasserstein", "real_sign"}
    assert float(stats["wasserstein"]) == pytest.approx(mean(R) - mean(F_))


def test_relativistic_g_loss_is_given_the_real_batch_explicitly():
    loss, D = gankit.registry("losses").build("relativistic"), MeanLogit()
    assert loss.needs_real_for_g  # the trainer passes the step's real batch to g_loss
    loss.d_loss(D, images(*R), images(0.0, 0.0))  # no hidden state: a D step before changes nothing
    with pytest.raises(GankitError, match="needs the real batch"):
        loss.g_loss(D, images(*F_))
    explicit, _ = loss.g_loss(D, images(*F_), real=images(*R))
    assert float(explicit) == pytest.approx(mean([-math.log(sig(f - r)) for r, f in zip(R, F_)]), rel=1e-5)


def test_rpgan_refuses_unequal_batches_and_ragan_takes_them():
    D = MeanLogit()
    with pytest.raises(GankitError, match="one to one.*average: true"):
        gankit.registry("losses").build("relativistic").d_loss(D, images(1.0, 2.0, 3.0), images(*F_))
    d, _ = gankit.registry("losses").build("relativistic", average=True).d_loss(D, images(1.0, 2.0, 3.0), images(*F_))
    assert torch.isfinite(d)


def test_old_style_losses_still_work_unconditionally():
    """A plugin loss written against the old interface (no label keywords) keeps working."""

    class Old(gankit.losses.GANLoss):
        def d_loss(self, D, real, fake):
            return D(real).mean() - D(fake).mean(), {}

        def g_loss(self, D, fake):
            return -D(fake).mean(), {}

    d, _ = Old().d_loss(MeanLogit(), images(*R), images(*F_))
    assert float(d) == pytest.approx(mean(R) - mean(F_))
