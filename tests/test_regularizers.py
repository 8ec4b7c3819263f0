"""Regularisers: WGAN-GP and R1 against a hand computation on a tiny network; laziness; labels; mistakes."""

import pytest
import torch
from torch import nn

import gankit
from gankit.core.errors import GankitError
from gankit.core.plugins import get_host

_REG = get_host().registry("regularizers")
# D's regularisers, penalty(D, real, fake, step); the generator's (path length) are tested with their family
REGULARIZERS = [n for n in _REG.list() if getattr(_REG.get(n), "player", "discriminator") == "discriminator"]
LOSSES = get_host().registry("losses").list()


class Tiny(nn.Module):
    """D(x) = v · tanh(W x + b) on the flattened image: its input gradient is known in closed form."""

    def __init__(self, pixels=12, hidden=5):
        super().__init__()
        torch.manual_seed(3)
        self.W = nn.Linear(pixels, hidden)
        self.v = nn.Linear(hidden, 1, bias=False)

    def forward(self, x):
        return self.v(torch.tanh(self.W(x.flatten(1)))).view(-1)

    def hand_gradient(self, x):
        """∇ₓ D(x) = Wᵀ (v ⊙ (1 - tanh²(W x + b))), per image, written out."""
        with torch.no_grad():
            W, b, v = self.W.weight, self.W.bias, self.v.weight[0]
            h = torch.tanh(x.flatten(1) @ W.T + b)  # N x hidden
            return ((v * (1 - h**2)) @ W).view_as(x)  # N x pixels -> the image's shape


def batch(seed, n=6):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 2, 2, generator=g) * 2 - 1


def test_r1_is_gamma_half_the_mean_squared_gradient_norm():
    D, real, fake = Tiny(), batch(1), batch(2)
    penalty, stats = gankit.registry("regularizers").build("r1", gamma=3.0).penalty(D, real, fake, step=0)
    grads = D.hand_gradient(real)
    expected = 3.0 / 2 * grads.flatten(1).pow(2).sum(1).mean()  # γ/2 E‖∇D(x)‖²
    assert torch.allclose(penalty, expected, rtol=1e-5)
    assert torch.allclose(stats["r1"], expected, rtol=1e-5)
    assert torch.allclose(stats["r1_grad_norm"], grads.flatten(1).norm(dim=1).mean(), rtol=1e-5)


def test_gp_is_lambda_times_the_squared_distance_of_the_gradient_norm_from_one():
    D, real, fake = Tiny(), batch(1), batch(2)
    torch.manual_seed(7)
    penalty, stats = gankit.registry("regularizers").build("gp").penalty(D, real, fake, step=0)
    torch.manual_seed(7)  # ε ~ U[0, 1] per image, from the global generator: the same draw again
    eps = torch.rand(real.shape[0], 1, 1, 1)
    x_hat = eps * real + (1 - eps) * fake
    norms = D.hand_gradient(x_hat).flatten(1).norm(dim=1)
    expected = 10.0 * ((norms - 1) ** 2).mean()  # λ E[(‖∇D(x̂)‖ - 1)²], λ = 10 by default
    assert torch.allclose(penalty, expected, rtol=1e-5)
    assert torch.allclose(stats["gp_grad_norm"], norms.mean(), rtol=1e-5)


@pytest.mark.parametrize("name", REGULARIZERS)
def test_the_penalty_trains_d_and_never_touches_g(name):
    D = Tiny()
    G = nn.Linear(4, 12)
    fake = G(torch.randn(6, 4)).view(6, 3, 2, 2)
    penalty, _ = gankit.registry("regularizers").build(name).penalty(D, batch(1), fake.detach(), step=0)
    penalty.backward()
    assert D.W.weight.grad is not None and D.W.weight.grad.abs().sum() > 0  # create_graph: reaches D's weights
    assert all(p.grad is None for p in G.parameters())


@pytest.mark.parametrize("reg", REGULARIZERS)
@pytest.mark.parametrize("loss_name", LOSSES)
def test_any_loss_combines_with_any_regularizer(loss_name, reg):
    D = Tiny()
    real, fake = batch(1), batch(2)
    loss_d, _ = gankit.registry("losses").build(loss_name).d_loss(D, real, fake)
    penalty, _ = gankit.registry("regularizers").build(reg).penalty(D, real, fake, step=0)
    total = loss_d + penalty
    total.backward()
    assert torch.isfinite(total) and all(torch.isfinite(p.grad).all() for p in D.parameters())


def test_lazy_r1_runs_every_k_steps_and_weighs_k_times():
    D, real, fake = Tiny(), batch(1), batch(2)
    every_step, _ = gankit.registry("regularizers").build("r1", gamma=2.0).penalty(D, real, fake, step=0)
    lazy = gankit.registry("regularizers").build("r1", gamma=2.0, every=4)
    results = [lazy.penalty(D, real, fake, step=s) for s in range(9)]
    ran = [s for s, (p, _) in enumerate(results) if p is not None]
    assert ran == [0, 4, 8]
    assert all(stats == {} for p, stats in results if p is None)
    assert torch.allclose(results[4][0], 4 * every_step)  # StyleGAN2's lazy regularisation


@pytest.mark.parametrize("name", REGULARIZERS)
def test_a_conditional_d_sees_the_labels_of_the_images_it_judges(name):
    seen = []

    class CondD(Tiny):
        num_classes = 3

        def forward(self, x, labels):
            seen.append(labels)
            return super().forward(x) * (1 + labels.float())

    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    reg = gankit.registry("regularizers").build(name)
    penalty, _ = reg.penalty(CondD(), batch(1), batch(2), step=0, real_labels=labels, fake_labels=labels.flip(0))
    expected = labels if reg.judges == "real" else labels.flip(0)
    assert torch.isfinite(penalty) and seen and all(torch.equal(s, expected) for s in seen)


@pytest.mark.parametrize("name,kwargs,match", [
    ("r1", {"gamma": -1.0}, "gamma must be >= 0"),
    ("r1", {"every": 0}, "every must be"),
    ("gp", {"weight": -2.0}, "weight must be >= 0"),
])
def test_bad_arguments_are_user_errors(name, kwargs, match):
    with pytest.raises(GankitError, match=match):
        gankit.registry("regularizers").build(name, **kwargs)


def test_gp_needs_matching_real_and_fake_batches():
    with pytest.raises(GankitError, match="one to one"):
        gankit.registry("regularizers").build("gp").penalty(Tiny(), batch(1, n=6), batch(2, n=4), step=0)
