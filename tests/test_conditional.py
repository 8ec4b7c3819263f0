"""Class-conditional GANs: the label helpers, the conditional models, one conditional training step."""

import pytest
import torch

import gankit
from gankit.nn.conditional import (
    check_labels, check_pair, class_grid_labels, class_labels, cycle_labels, is_conditional, num_classes,
)
from gankit.core.errors import DataError, GankitError
from gankit.nn.class_batchnorm import ClassBatchNorm2d
from gankit.core.plugins import get_host

CONDITIONAL_G = [n for n in get_host().registry("generators").list()
                 if is_conditional(gankit.registry("generators").build(n, image_size=32, channels=1))]
CONDITIONAL_D = ["dcgan_projection", "sngan_projection"]


def small(kind, name, **kwargs):
    """A small instance with 4 classes (its family says what small is: ``small_args``)."""
    obj = gankit.registry(kind).get(name)
    return obj(image_size=32, channels=1, num_classes=4, **{**getattr(obj, "small_args", {}), **kwargs})


def test_class_grid_has_one_row_per_class():
    labels = class_grid_labels(3, 4)
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]  # save with nrow=4: row k is class k
    assert labels.dtype == torch.int64
    with pytest.raises(ValueError):
        class_grid_labels(0, 4)


def test_cycle_and_single_class_labels():
    assert cycle_labels(5, 3).tolist() == [0, 1, 2, 0, 1]
    assert class_labels(3, 10, 7).tolist() == [7, 7, 7]
    with pytest.raises(GankitError, match="--class 10: the generator has 10 classes, 0 to 9"):
        class_labels(3, 10, 10)


def test_label_checks_name_the_fix():
    check_labels(torch.tensor([0, 9]), 10, "mnist")
    with pytest.raises(DataError, match="dataset 'celeba' has no class labels.*labelled dataset"):
        check_labels(torch.tensor([-1, -1]), 10, "celeba")
    with pytest.raises(DataError, match="num_classes: 10.*at least 12"):
        check_labels(torch.tensor([3, 11]), 10, "imagefolder")


def test_conditional_models_are_recognised_and_must_agree():
    G = small("generators", "dcgan_cond")
    assert num_classes(G) == 4 and is_conditional(G)
    assert not is_conditional(gankit.registry("discriminators").build("dcgan", ndf=8, image_size=32))
    check_pair(G, small("discriminators", "dcgan_projection"))
    other = gankit.registry("discriminators").build("dcgan_projection", ndf=8, image_size=32, num_classes=5)
    with pytest.raises(GankitError, match="generator.num_classes is 4 but discriminator.num_classes is 5"):
        check_pair(G, other)


def test_every_conditional_generator_is_registered_here():
    assert "dcgan_cond" in CONDITIONAL_G


@pytest.mark.parametrize("name", CONDITIONAL_G)
def test_conditional_generator_draws_by_label_and_cycles_without(name):
    torch.manual_seed(0)
    G = small("generators", name)
    z = torch.randn(4, G.nz)
    a, b = G(z, torch.tensor([0, 0, 0, 0])), G(z, torch.tensor([1, 1, 1, 1]))
    assert a.shape == (4, 1, 32, 32) and not torch.allclose(a, b)
    assert torch.equal(G(z), G(z, cycle_labels(4, 4)))  # without labels: classes in turn


@pytest.mark.parametrize("name", CONDITIONAL_D)
def test_projection_discriminator_adds_the_class_term(name):
    torch.manual_seed(0)
    D = small("discriminators", name)
    assert D.num_classes == 4
    x = torch.randn(4, 1, 32, 32, requires_grad=True)
    plain = D(x)
    y0, y1 = D(x, torch.zeros(4, dtype=torch.long)), D(x, torch.ones(4, dtype=torch.long))
    assert plain.shape == y0.shape == (4,)
    assert not torch.allclose(y0, y1) and not torch.allclose(plain, y0)
    y0.sum().backward()
    assert x.grad is not None
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D.embed.parameters())  # the class term learns


@pytest.mark.parametrize("d_name", CONDITIONAL_D)
def test_one_conditional_training_step_with_every_loss(d_name):
    torch.manual_seed(0)
    G, D = small("generators", "dcgan_cond"), small("discriminators", d_name)
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    real, real_y = torch.rand(4, 1, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3])
    fake_y = torch.tensor([3, 2, 1, 0])
    for loss_name in gankit.registry("losses").list():
        loss = gankit.registry("losses").build(loss_name)
        fake = G(torch.randn(4, G.nz), fake_y)
        opt_d.zero_grad()
        d, _ = loss.d_loss(D, real, fake.detach(), real_labels=real_y, fake_labels=fake_y)
        d.backward()
        assert all(torch.isfinite(p.grad).all() for p in D.parameters() if p.grad is not None), loss_name
        opt_d.step()
        opt_g.zero_grad()
        extra = {"real": real, "real_labels": real_y} if loss.needs_real_for_g else {}  # as the trainer passes it
        g, _ = loss.g_loss(D, fake, fake_labels=fake_y, **extra)
        g.backward()
        # the classes' own BatchNorm scales and shifts learn
        per_class = [p for m in G.modules() if isinstance(m, ClassBatchNorm2d) for p in (m.gain.weight, m.shift.weight)]
        assert per_class and all(p.grad is not None and p.grad.abs().sum() > 0 for p in per_class), loss_name
        opt_g.step()
