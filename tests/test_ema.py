"""EMA of G's weights: the update rule, the ramp-up, buffers, and an exact resume through a checkpoint."""

import io

import pytest
import torch
from torch import nn

from gankit.training.ema import EMA
from gankit.core.errors import CheckpointError, GankitError


def small_g(seed=0):
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    G.nz = 4
    return G


def train_g(G, seed):
    """Move G's weights and BatchNorm statistics as a training step would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    G(torch.randn(16, 4, generator=g))  # training mode: updates the running statistics


def test_without_rampup_each_update_is_decay_times_old_plus_the_rest_times_new():
    G = small_g()
    ema = EMA(G, decay=0.9)
    before = {k: v.clone() for k, v in ema.module.state_dict().items()}
    train_g(G, 1)
    ema.update(G, step=1, batch_size=32)
    for name, p in G.named_parameters():
        expected = 0.9 * before[name] + 0.1 * p.detach()
        assert torch.allclose(dict(ema.module.named_parameters())[name], expected, atol=1e-7)
    assert ema.beta(7) == pytest.approx(0.9) and ema.beta(512) == pytest.approx(0.9)  # any batch size


def test_buffers_are_copied_not_averaged_and_the_copy_needs_no_gradients():
    G = small_g()
    ema = EMA(G, decay=0.99)
    train_g(G, 1)
    ema.update(G, step=1, batch_size=16)
    assert torch.equal(ema.module[1].running_mean, G[1].running_mean)
    assert torch.equal(ema.module[1].num_batches_tracked, G[1].num_batches_tracked)
    assert not any(p.requires_grad for p in ema.module.parameters())
    assert all(p.requires_grad for p in G.parameters())
    assert ema.module.nz == 4 and ema.module.training == G.training


def test_rampup_copies_g_first_then_grows_the_half_life_to_decays():
    G = small_g()
    ema = EMA(G, decay=0.999, rampup=0.05)
    assert ema.beta(64) == 0.0  # no images seen yet: the first update copies G
    train_g(G, 1)
    ema.update(G, step=1, batch_size=64)
    for a, b in zip(ema.module.parameters(), G.parameters()):
        assert torch.equal(a, b)
    # half-life = min(64 · ln½/ln 0.999 images, 0.05 · images seen), β = ½^(64 / half-life)
    assert ema.beta(64) == pytest.approx(0.5 ** (64 / (0.05 * 64)))
    betas = []
    for step in range(2, 40):
        ema.update(G, step, 64)
        betas.append(ema.beta(64))
    assert all(a < b for a, b in zip(betas, betas[1:]))
    ema.images_seen = 10**9
    assert ema.beta(64) == pytest.approx(0.999)


def test_resume_is_exact():
    """N updates in one go and N/2, checkpoint (torch.load weights_only), N/2 end bit-identical."""
    def g_states(n):
        G = small_g()
        states = []
        for i in range(n):
            train_g(G, 100 + i)
            states.append({k: v.clone() for k, v in G.state_dict().items()})
        return states

    states = g_states(8)
    G = small_g()

    def run(ema, steps):
        for step in steps:
            G.load_state_dict(states[step - 1])
            ema.update(G, step, batch_size=48 if step % 3 else 17)  # a smaller last batch now and then

    straight = EMA(small_g(), decay=0.99, rampup=0.05)
    run(straight, range(1, 9))

    first = EMA(small_g(), decay=0.99, rampup=0.05)
    run(first, range(1, 5))
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = EMA(small_g(seed=5), decay=0.99, rampup=0.05)  # a differently initialised G, as after a restart
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    run(resumed, range(5, 9))

    assert resumed.images_seen == straight.images_seen and resumed.step == straight.step == 8
    for (name, a), b in zip(straight.module.state_dict().items(), resumed.module.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("kwargs,match", [({"decay": 1.0}, r"\[0, 1\)"), ({"decay": -0.1}, r"\[0, 1\)"),
                                          ({"rampup": 0.0}, "rampup must be > 0")])
def test_bad_settings_are_user_errors(kwargs, match):
    with pytest.raises(GankitError, match=match):
        EMA(small_g(), **kwargs)


def test_decay_zero_follows_g_exactly():
    G = small_g()
    ema = EMA(G, decay=0.0)
    train_g(G, 1)
    ema.update(G, 1, 8)
    assert all(torch.equal(a, b) for a, b in zip(ema.module.parameters(), G.parameters()))


def test_a_state_for_another_generator_is_a_checkpoint_error():
    state = EMA(small_g()).state_dict()
    other = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(CheckpointError, match="EMA generator does not fit"):
        EMA(other).load_state_dict(state)
