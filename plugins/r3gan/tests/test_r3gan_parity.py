"""Parity with the official R3GAN code (brownvc/R3GAN 19a7ddf) on its stored golden outputs.

For each tiny configuration the official networks' kwargs and (perturbed) state
dicts are loaded through :mod:`gankit_r3gan.official`; G's images, D's logits,
the D step (RpGAN + γ/2 (R1 + R2), as ``R3GAN/Trainer.py``'s
``AccumulateDiscriminatorGradients``) and the G step (``AccumulateGeneratorGradients``)
must match to 1e-5 relative, with gankit's own ``relativistic`` loss and
``r1``/``r2`` regularisers built from the registries.

What produced the stored tensors (from the official Trainer): ``G_out`` = G(z, c);
``D_real`` = D(real, c), ``D_fake`` = D(G_out, c) with G_out detached, both with the
same classes c; the D step's fakes are that detached G_out, and the G step
regenerates G(z, c) (the same images) and scores the detached real batch.
"""

import functools

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit_r3gan import official
from gankit_r3gan.layers import BiasedLeakyReLU
from goldens import load_golden

CONFIGS = ["tiny_uncond", "tiny_cond10", "tiny_uncond_32px"]
TOL = 1e-5



def rel(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """max |ours - theirs| / max |theirs|: the error relative to the tensor's scale."""
    ours, theirs = ours.detach().double(), theirs.detach().double()
    assert ours.shape == theirs.shape
    return float((ours - theirs).abs().max() / theirs.abs().max().clamp_min(1e-30))


def rel_grads(module, mapping, golden_grads) -> dict[str, float]:
    """Every parameter's gradient against the official one (by the key map)."""
    ours = dict(module.named_parameters())
    assert set(mapping[k] for k in golden_grads) == set(ours)  # every parameter, no other
    return {k: rel(ours[mapping[k]].grad, g) for k, g in golden_grads.items()}


def show(name: str, diffs: dict[str, float]) -> None:
    """Print the figures (``pytest -rP`` shows them for passing tests)."""
    print(f"{name}: max relative difference to the official code: "
          + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))


@pytest.fixture(scope="module")
def golden():
    return load_golden("r3gan_official.pt")  # ../shared/parity: fails under CI=true when missing, else skips


def setup(golden, name):
    t = golden[name]
    G = official.generator(t["G_kwargs"], t["G_state"])
    D = official.discriminator(t["D_kwargs"], t["D_state"])
    labels = None if t["c"] is None else t["c"].argmax(dim=1)  # one-hot -> int64 classes
    return t, G, D, labels


@pytest.mark.parametrize("name", CONFIGS)
def test_outputs_match(golden, name):
    t, G, D, y = setup(golden, name)
    with torch.no_grad():
        diffs = {"G_out": rel(G(t["z"], y), t["G_out"]),
                 "D_real": rel(D(t["real"], y), t["D_real"]),
                 "D_fake": rel(D(t["G_out"], y), t["D_fake"])}
        if t["c"] is not None:  # the official one-hot class vectors give the same
            diffs["G_out (one-hot)"] = rel(G(t["z"], t["c"]), t["G_out"])
            diffs["D_real (one-hot)"] = rel(D(t["real"], t["c"]), t["D_real"])
    show(name, diffs)
    assert max(diffs.values()) < TOL, diffs


def per_image_penalty(D, x, labels):
    """‖∇ₓ D(x)‖² per image (the official ZeroCenteredGradientPenalty)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x, labels).sum(), x)
    return grad.square().sum(dim=[1, 2, 3])


@pytest.mark.parametrize("name", CONFIGS)
def test_discriminator_step_matches(golden, name):
    t, G, D, y = setup(golden, name)
    real, fake, gamma = t["real"], t["G_out"].detach(), t["gamma"]
    ref = t["d_loss"]

    logits = D(real, y) - D(fake, y)  # relativistic pairing: C(x_i) - C(G(z_i))
    r1, r2 = per_image_penalty(D, real, y), per_image_penalty(D, fake, y)
    diffs = {"relativistic_logits": rel(logits, ref["relativistic_logits"]),
             "adversarial": rel(F.softplus(-logits), ref["adversarial"]),
             "r1": rel(r1, ref["r1"]), "r2": rel(r2, ref["r2"])}

    loss = gankit.registry("losses").build("relativistic")
    reg1 = gankit.registry("regularizers").build("r1", gamma=gamma)
    reg2 = gankit.registry("regularizers").build("r2", gamma=gamma)
    D.zero_grad(set_to_none=True)
    labels = {"real_labels": y, "fake_labels": y}
    adv, _ = loss.d_loss(D, real, fake, **labels)
    p1, _ = reg1.penalty(D, real, fake, 0, **labels)
    p2, _ = reg2.penalty(D, real, fake, 0, **labels)
    total = adv + p1 + p2  # mean(softplus(-(C(x) - C(G(z)))) + γ/2 (R1 + R2))
    total.backward()
    diffs["adversarial mean"] = rel(adv, ref["adversarial"].mean())
    diffs["r1 penalty"] = rel(p1, gamma / 2 * ref["r1"].mean())
    diffs["r2 penalty"] = rel(p2, gamma / 2 * ref["r2"].mean())
    diffs["total_mean"] = rel(total, ref["total_mean"])
    grads = rel_grads(D, official.key_map(t["D_state"], "discriminator"), t["D_grads"])
    diffs["D_grads (max)"] = max(grads.values())
    show(name, diffs)
    assert max(diffs.values()) < TOL, (diffs, grads)


class LeakyReLUBranches:
    """Run every biased LeakyReLU of some networks as usual, but optionally with one pre-activation
    (module, call, flat index) on the other branch; and list the pre-activations within ``limit`` of 0.

    A pre-activation within float32 rounding of zero can land on either side of it in two
    implementations whose reductions run in different orders; its slope (1 or 0.2) then differs, and so
    does every gradient upstream of it. The port is right if it matches with that one element flipped.
    """

    def __init__(self, *networks, limit: float = 1e-6):
        self.limit, self.flip, self.near_zero, self.calls = limit, None, [], {}
        self.modules = [m for net in networks for m in net.modules() if isinstance(m, BiasedLeakyReLU)]
        for m in self.modules:
            m.forward = functools.partial(self.forward, m)

    def reset(self, flip=None):
        self.flip, self.near_zero, self.calls = flip, [], {}

    def forward(self, m, x):
        call = self.calls[m] = self.calls.get(m, 0) + 1
        y = x + m.bias.to(x.dtype).view(1, -1, *([1] * (x.dim() - 2)))
        slope = torch.where(y < 0, 0.2, 1.0).to(y.dtype)  # LeakyReLU(0.2)(y) = slope(y) · y
        for i in (y.detach().abs().flatten() < self.limit).nonzero().flatten().tolist():
            self.near_zero.append((m, call, i))
        if self.flip is not None and self.flip[:2] == (m, call):
            slope.view(-1)[self.flip[2]] = 1.2 - slope.view(-1)[self.flip[2]]
        return y * slope


def generator_step(t, G, D, y):
    """gankit's G step (RpGAN through the registry), its diffs against the official, its G gradients."""
    ref = t["g_loss"]
    loss = gankit.registry("losses").build("relativistic")
    fake = G(t["z"], y)
    g, _ = loss.g_loss(D, fake, fake_labels=y, real=t["real"], real_labels=y)
    G.zero_grad(set_to_none=True)
    g.backward()
    with torch.no_grad():
        logits = D(fake, y) - D(t["real"], y)  # C(G(z_i)) - C(x_i)
    diffs = {"relativistic_logits": rel(logits, ref["relativistic_logits"]),
             "adversarial": rel(F.softplus(-logits), ref["adversarial"]),
             "mean": rel(g, ref["mean"])}
    grads = rel_grads(G, official.key_map(t["G_state"], "generator"), t["G_grads"])
    diffs["G_grads (max)"] = max(grads.values())
    return diffs, grads


@pytest.mark.parametrize("name", CONFIGS)
def test_generator_step_matches(golden, name):
    t, G, D, y = setup(golden, name)
    branches = LeakyReLUBranches(G, D)
    diffs, grads = generator_step(t, G, D, y)
    if max(diffs.values()) >= TOL:
        # tiny_uncond_32px: one pre-activation of G's last block is 2.7e-9 in float64 (2.4e-8 here, which
        # float64 confirms is the right side); the official float32 run put it below zero.
        for flip in list(branches.near_zero):
            branches.reset(flip)
            flipped, flipped_grads = generator_step(t, G, D, y)
            if max(flipped.values()) < TOL:
                diffs, grads = flipped, flipped_grads
                break
    show(name, diffs)
    assert max(diffs.values()) < TOL, (diffs, grads)
