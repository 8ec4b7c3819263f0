"""ADA: the pipeline's transforms one at a time, its random streams, gradients; the p controller.

Expected results are written here from each transform's definition, with the
random draws re-made from a copy of the generator in the documented order
(per transform: its values, then the uniform deciding whether it applies).
"""

import math

import pytest
import torch

from gankit.augment.ada import ADAugment, PRESETS
from gankit.augment.adaptive import AdaptiveP
from gankit.core.errors import CheckpointError, GankitError

SEED = 7


def noise_images(n=4, c=3, h=24, w=24, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def replay(seed=SEED):
    return torch.Generator().manual_seed(seed)


def one(name, c=3, h=32, w=32, n=6, seed=SEED, x=None, **kw):
    """(input, output of the pipeline with only transform ``name`` at p = 1)."""
    x = noise_images(n, c, h, w) if x is None else x
    return x, ADAugment("none", p=1.0, **{name: 1.0}, **kw)(x, generator=replay(seed))


class Smooth:
    """A smooth image f(x, y) in centred pixel coordinates, to evaluate anywhere (low frequencies only)."""

    def __init__(self, h=32, w=32, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.h, self.w = h, w
        self.amp = torch.randn(3, 3, generator=g) / (1 + torch.arange(3.0)[:, None] + torch.arange(3.0))
        self.phase = torch.rand(3, 3, generator=g) * 2 * math.pi

    def __call__(self, xc, yc):
        u, v = (xc + self.w / 2) / self.w, (yc + self.h / 2) / self.h
        return sum(self.amp[i, j] * torch.cos(2 * math.pi * (i * v + j * u) + self.phase[i, j])
                   for i in range(3) for j in range(3))

    def grid(self):
        yc, xc = torch.meshgrid(torch.arange(self.h) - (self.h - 1) / 2, torch.arange(self.w) - (self.w - 1) / 2,
                                indexing="ij")
        return xc, yc


# ---------------------------------------------------------------------------------------------- construction

def test_presets_and_multipliers():
    assert ADAugment().preset == "bgc" and ADAugment().p == 0.0
    bgc = ADAugment("bgc").multipliers
    assert all(bgc[k] == 1 for k in ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
                                     "brightness", "contrast", "lumaflip", "hue", "saturation"))
    assert bgc["imgfilter"] == bgc["noise"] == bgc["cutout"] == 0
    assert all(v == 1 for v in ADAugment("bgcfnc").multipliers.values())
    assert ADAugment("gc").multipliers["xflip"] == 0 and ADAugment("gc").multipliers["scale"] == 1
    assert ADAugment("bgc", xflip=0, noise=0.5).multipliers["xflip"] == 0
    assert ADAugment("bgc", noise=0.5).multipliers["noise"] == 0.5
    assert {"b", "g", "c", "bg", "gc", "bgc", "bgcf", "bgcfn", "bgcfnc"} <= set(PRESETS)


def test_mistakes_are_reported():
    with pytest.raises(GankitError, match="did you mean 'bgc'"):
        ADAugment("bgcc")
    with pytest.raises(GankitError, match="xflip"):
        ADAugment(xflip=-1)
    with pytest.raises(GankitError, match="imgfilter_bands"):
        ADAugment(imgfilter_bands=(1, 1))
    aug = ADAugment()
    with pytest.raises(GankitError, match="augment.p"):
        aug.p = -0.1
    aug.p = 1.5  # the official controller can pass 1
    with pytest.raises(GankitError, match="22|21"):
        ADAugment("f", p=1)(noise_images(h=16, w=16))


# ------------------------------------------------------------------------------------------------ identity

@pytest.mark.parametrize("preset", ["bgc", "bgcfnc", "c", "g"])
@pytest.mark.parametrize("c", [1, 3])
def test_p0_is_the_identity_and_makes_the_official_draws(preset, c):
    x = noise_images(c=c)
    g, h = replay(), replay()
    out = ADAugment(preset, p=0.0)(x, generator=g)
    ADAugment(preset, p=0.5)(x, generator=h)
    # Every gate closed, so the images themselves; the stream moves as at any p (the official pipe draws at p = 0).
    assert out is x and torch.equal(g.get_state(), h.get_state())
    assert not torch.equal(g.get_state(), replay().get_state())


# ------------------------------------------------------------------------------------------- pixel blitting

def peak(img):
    """(row, col) of the largest value of a H x W image."""
    i = int(img.argmax())
    return divmod(i, img.shape[-1])


def test_xflip_mirrors_with_probability_one_half():
    n, h, w = 16, 20, 24
    x = torch.zeros(n, 1, h, w)
    x[:, 0, 5, 7] = 1  # one bright pixel, off the axis of symmetry and the border
    flips = torch.floor(torch.rand(n, generator=replay()) * 2)  # the drawn value comes first
    _, out = one("xflip", x=x, n=n)
    assert 0 < flips.sum() < n
    for img, f in zip(out[:, 0], flips):
        assert peak(img) == ((5, w - 1 - 7) if f else (5, 7))
        assert img.max() > 0.9 and img.sum() == pytest.approx(1, abs=1e-4)
    smooth = Smooth(h, w)
    xs = smooth(*smooth.grid()).expand(n, 1, h, w).contiguous()
    _, out = one("xflip", x=xs, n=n)
    for img, src, f in zip(out, xs, flips):
        expected = src.flip(-1) if f else src
        # Unflipped images pass through an identity warp (exact); flipped ones through the asymmetric
        # sym6 resampler, which rings by a few per cent (the official code does the same).
        assert (img - expected).abs().max() < (0.12 if f else 1e-4)


def test_rotate90_turns_by_the_drawn_quarter_turns():
    n, s = 12, 20
    x = torch.zeros(n, 1, s, s)
    x[:, 0, 4, 13] = 1
    k = torch.floor(torch.rand(n, generator=replay()) * 4).long()
    _, out = one("rotate90", x=x, n=n)
    assert len(set(k.tolist())) == 4
    for img, src, turns in zip(out[:, 0], x[:, 0], k):
        assert peak(img) == peak(torch.rot90(src, int(turns), dims=(0, 1)))
        assert img.max() > 0.9


def test_integer_translation_shifts_exactly_with_reflection_at_the_border():
    n, h, w = 6, 24, 32
    x, out = one("xint", c=3, h=h, w=w, n=n)
    t = (torch.rand(n, 2, generator=replay()) * 2 - 1) * 0.125
    shift_x, shift_y = torch.round(t[:, 0] * w).long(), torch.round(t[:, 1] * h).long()
    assert (shift_x != 0).any() and (shift_y != 0).any()

    def reflect(i, size):  # mirror about the edge pixels (the edge itself is not repeated)
        i = i.abs()
        return torch.where(i > size - 1, 2 * (size - 1) - i, i)

    for img, src, dx, dy in zip(out, x, shift_x, shift_y):
        rows = reflect(torch.arange(h) - dy, h)  # out(y, x) = in(y - dy, x - dx)
        cols = reflect(torch.arange(w) - dx, w)
        assert torch.allclose(img, src[:, rows][:, :, cols], atol=2e-5)


# ------------------------------------------------------------------------------------------ general geometry

# Where each output pixel (x, y) reads the input from, re-made from the draws (6 images of 32 x 32).

def scaled(x, y, g):  # magnified by s = 2^N(0, 0.2²)
    s = torch.exp2(torch.randn(6, 1, 1, generator=g) * 0.2)
    return x / s, y / s


def stretched(x, y, g):  # x by s, y by 1/s
    s = torch.exp2(torch.randn(6, 1, 1, generator=g) * 0.2)
    return x / s, y * s


def shifted(x, y, g):  # by N(0, 0.125²) of the size
    t = torch.randn(6, 2, 1, 1, generator=g) * 0.125 * 32
    return x - t[:, 0], y - t[:, 1]


def rotated(x, y, g):  # angle, decision, angle, decision: at p = 1 both rotations apply
    u = torch.rand(4, 6, 1, 1, generator=g)
    theta = (u[0] * 2 - 1) * math.pi + (u[2] * 2 - 1) * math.pi
    return x * torch.cos(theta) - y * torch.sin(theta), x * torch.sin(theta) + y * torch.cos(theta)


SOURCES = {"scale": scaled, "aniso": stretched, "xfrac": shifted, "rotate": rotated}


@pytest.mark.parametrize("name", SOURCES)
def test_general_geometry_by_the_drawn_amount(name):
    """Output = f(source(x, y)) for a smooth f, on the central region (no border effects)."""
    smooth = Smooth()
    xc, yc = smooth.grid()
    x = smooth(xc, yc).expand(6, 1, 32, 32).contiguous()
    out = one(name, x=x)[1][:, 0]
    expected = smooth(*SOURCES[name](xc, yc, replay()))
    inner = (xc.abs() < 8) & (yc.abs() < 8)
    # Rotations pass through the asymmetric sym6 resampler, which rings by a few per cent (as the official code).
    assert (out - expected)[:, inner].abs().max() < (0.1 if name == "rotate" else 0.02)


# ------------------------------------------------------------------------------------------------- colour

def test_brightness_adds_the_drawn_offset():
    (x, out), g = one("brightness"), replay()
    b = torch.randn(6, 1, 1, 1, generator=g) * 0.2
    assert torch.allclose(out, x + b, atol=1e-6)


def test_contrast_scales_about_mid_grey():
    (x, out), g = one("contrast"), replay()
    k = torch.exp2(torch.randn(6, 1, 1, 1, generator=g) * 0.5)
    assert torch.allclose(out, x * k, atol=1e-6)  # about 0, the mid-grey of [-1, 1]


def test_saturation_scales_the_colour_away_from_grey():
    (x, out), g = one("saturation"), replay()
    s = torch.exp2(torch.randn(6, 1, 1, 1, generator=g))
    grey = x.mean(dim=1, keepdim=True)
    assert torch.allclose(out, grey + s * (x - grey), atol=1e-5)


@pytest.mark.parametrize("c", [1, 3])
def test_luma_flip_mirrors_along_the_grey_axis(c):
    (x, out), g = one("lumaflip", c=c), replay()
    flip = torch.floor(torch.rand(6, generator=g) * 2)[:, None, None, None]
    assert 0 < flip.sum() < 6
    grey = x.mean(dim=1, keepdim=True)  # (c·v)v for v = (1, 1, 1)/√3 is the grey part; a grey image is all grey
    assert torch.allclose(out, x - 2 * grey * flip, atol=1e-6)


def test_hue_rotates_about_the_grey_axis():
    (x, out), g = one("hue"), replay()
    theta = (torch.rand(6, generator=g) * 2 - 1) * math.pi
    v = torch.ones(3) / math.sqrt(3)
    px = x.permute(0, 2, 3, 1)  # colours as vectors
    along = (px @ v)[..., None] * v
    across = px - along
    turned = torch.linalg.cross(v.expand_as(across), across, dim=-1)
    cos, sin = torch.cos(theta)[:, None, None, None], torch.sin(theta)[:, None, None, None]
    expected = (along + cos * across + sin * turned).permute(0, 3, 1, 2)  # Rodrigues, right-handed
    assert torch.allclose(out, expected, atol=1e-5)


def test_hue_and_saturation_skip_grey_images_without_drawing():
    x = noise_images(c=1)
    g = replay()
    state = g.get_state()
    out = ADAugment("none", p=1, hue=1, saturation=1)(x, generator=g)
    assert torch.equal(out, x) and torch.equal(g.get_state(), state)


# ---------------------------------------------------------------------------------- filtering and corruption

def band_gains(g, n, std=1.0):
    """The gain of each of the 4 bands (re-made from the draws), normalised for the 1/f power (10, 1, 1, 1)/13."""
    power = torch.tensor([10.0, 1, 1, 1]) / 13
    gains = torch.ones(n, 4)
    for band in range(4):
        t = torch.exp2(torch.randn(n, generator=g) * std)
        torch.rand(n, generator=g)  # the decision (always yes at p = 1)
        vec = torch.ones(n, 4)
        vec[:, band] = t
        gains *= vec / (power * vec**2).sum(1, keepdim=True).sqrt()
    return gains


def test_imgfilter_amplifies_the_lowest_and_highest_bands_by_their_gains():
    n = 4
    flat = torch.full((n, 1, 24, 24), 0.5)
    checker = (-1.0) ** (torch.arange(24)[:, None] + torch.arange(24))  # all energy at Nyquist in x and y
    gains = band_gains(replay(), n)
    # A separable filter: its response at (fx, fy) is h(fx)·h(fy); the constant is all band 0, Nyquist all band 3.
    assert torch.allclose(one("imgfilter", x=flat, n=n)[1], flat * gains[:, 0, None, None, None] ** 2, atol=1e-5)
    checkers = checker.expand(n, 1, 24, 24).contiguous()
    out = one("imgfilter", x=checkers, n=n)[1]
    assert torch.allclose(out, checkers * gains[:, 3, None, None, None] ** 2, atol=1e-4)
    x = noise_images(c=3)
    assert torch.allclose(one("imgfilter", x=x, n=4, imgfilter_std=0.0)[1], x, atol=1e-5)  # unit gains: identity


def test_noise_adds_noise_of_the_drawn_std():
    x, out = one("noise", c=3, h=64, w=64, n=4)
    g = replay()
    sigma = (torch.randn(4, generator=g).abs() * 0.1)[:, None, None, None]  # |N(0, 0.1²)|
    torch.rand(4, generator=g)
    field = torch.randn(4, 3, 64, 64, generator=g)
    assert torch.allclose(out, x + sigma * field, atol=1e-6)
    assert torch.allclose((out - x).std(dim=(1, 2, 3)), sigma.flatten(), rtol=0.05)


def test_cutout_zeros_a_square_of_half_the_size():
    n, s = 6, 16
    x = noise_images(n, 3, s, s) + 3  # nothing is 0 before
    _, out = one("cutout", x=x, n=n)
    g = replay()
    torch.rand(n, generator=g)  # the decision first, then the centre
    centre = torch.rand(n, 2, generator=g)
    for img, src, (cx, cy) in zip(out, x, centre):
        expected = src.clone()
        for i in range(s):
            for j in range(s):
                if abs((j + 0.5) / s - cx) < 0.25 and abs((i + 0.5) / s - cy) < 0.25:
                    expected[:, i, j] = 0
        assert torch.equal(img, expected)
        if 0.25 <= cx <= 0.75 and 0.25 <= cy <= 0.75:  # it fits: an 8 x 8 square
            assert (img[0] == 0).sum() == 64


# ------------------------------------------------------------------------------------------- random streams

def test_the_same_generator_state_gives_the_same_output_and_the_global_stream_is_untouched():
    x, aug = noise_images(), ADAugment("bgcfnc", p=0.7)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a, b = aug(x, generator=replay(3)), aug(x, generator=replay(3))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b) and not torch.equal(a, aug(x, generator=replay(4)))
    torch.manual_seed(5)
    c = aug(x)
    torch.manual_seed(5)
    assert torch.equal(c, aug(x))  # no generator: the global stream


def test_each_image_gets_its_own_draws():
    x = noise_images(n=1).expand(8, -1, -1, -1).contiguous()
    out = ADAugment("bgc", p=1.0)(x, generator=replay())
    assert len({tuple(o.flatten()[:32].tolist()) for o in out}) == 8


def test_probability_is_p_times_the_multiplier():
    n = 4000
    x = torch.zeros(n, 1, 4, 4)
    out = ADAugment("none", p=0.5, brightness=0.6)(x, generator=replay())
    assert (out[:, 0, 0, 0] != 0).float().mean() == pytest.approx(0.3, abs=0.03)


# ------------------------------------------------------------------------------------------------ gradients

def test_gradcheck_and_second_order_gradients():
    aug = ADAugment("bgc", p=1.0, noise=1, cutout=1)
    x = noise_images(1, 3, 8, 8).double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: aug(t, generator=replay()), (x,), eps=1e-6, atol=1e-5)

    aug = ADAugment("bgcfnc", p=1.0)
    x = noise_images(2, 3, 24, 24).double()
    w = torch.randn(x.shape, generator=replay(), dtype=torch.float64)

    def r1(t):  # R1 through the augmentation, with a nonlinear "D"
        t = t.requires_grad_(True) if not t.requires_grad else t
        score = (torch.tanh(aug(t, generator=replay())) * w).sum()
        (grad,) = torch.autograd.grad(score, t, create_graph=True)
        return grad.square().sum()

    xr = x.clone().requires_grad_(True)
    r1(xr).backward()
    assert xr.grad is not None and torch.isfinite(xr.grad).all() and xr.grad.abs().sum() > 0
    d = torch.randn(x.shape, generator=replay(1), dtype=torch.float64)
    eps = 1e-4
    numeric = (r1(x + eps * d).item() - r1(x - eps * d).item()) / (2 * eps)
    assert (xr.grad * d).sum().item() == pytest.approx(numeric, rel=1e-4)


# -------------------------------------------------------------------------------------------- the controller

def drive(ada, signs, batch=8):
    """Observe one batch per step with the given mean signs; the p after each step."""
    out = []
    for s in signs:
        ada.observe(s, batch_size=batch)
        out.append(ada.step())
    return out


def test_controller_follows_the_documented_update_and_clamps_at_zero():
    # n / (kimg·1000) = (8 · 4) / 320 = 0.1 per interval of 4 steps.
    ada = AdaptiveP(target=0.5, interval=4, kimg=0.32)  # 0.5: r_t can equal it exactly in binary
    signs = [1, 1, 0.5, 0.5,  # r_t = 0.75 > 0.5: up
             0.2, 0.2, 0.2, 0.2,  # 0.2: down
             -1, -1, -1, -1,  # down: clamps at 0
             0.5, 0.5, 0.5, 0.5,  # r_t = target: stays
             1, 1, 1, 1, 1, 1, 1, 1]
    expected = [0, 0, 0, 0.1, 0.1, 0.1, 0.1, 0.0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.1, 0.1, 0.1, 0.1, 0.2]
    assert drive(ada, signs) == pytest.approx(expected, abs=1e-12)
    assert ada.rt == pytest.approx(1.0) and ada.num_updates == 6


def test_controller_defaults_and_batch_weighting():
    ada = AdaptiveP()
    assert (ada.target, ada.interval, ada.kimg, ada.p) == (0.6, 4, 500, 0.0)
    for _ in range(4):
        ada.observe(torch.tensor(0.9), batch_size=64)
        p = ada.step()
    assert p == pytest.approx(4 * 64 / 500_000)
    # Two batches in one step (gradient accumulation), weighted by size: (0.5·2 + 1·6) / 8 = 0.875.
    ada = AdaptiveP(interval=1, kimg=1)
    ada.observe(0.5, batch_size=2)
    ada.observe(1.0, batch_size=6)
    assert ada.step() == pytest.approx(0.008) and ada.rt == pytest.approx(0.875)


def test_controller_state_round_trips_mid_interval(tmp_path):
    signs = [torch.tensor(v) for v in [0.9, 0.7, 0.8, 0.2, 0.9, 0.95, 0.1, 0.7, 0.7, 0.9, 0.8, 0.6, 0.3, 1.0]]
    whole = drive(AdaptiveP(interval=3, kimg=0.1), signs)
    first = AdaptiveP(interval=3, kimg=0.1)
    head = drive(first, signs[:7])  # stopped one step into an interval
    first.observe(signs[7], batch_size=8)  # ...and after an observe, before its step
    torch.save(first.state_dict(), tmp_path / "ada.pt")
    state = torch.load(tmp_path / "ada.pt", weights_only=True)
    assert set(state) == {"p", "sign_sum", "num_signs", "num_images", "num_steps", "num_updates", "rt"}
    resumed = AdaptiveP(interval=3, kimg=0.1)
    resumed.load_state_dict(state)
    tail = [resumed.step()] + drive(resumed, signs[8:])
    assert head + tail == whole
    with pytest.raises(CheckpointError, match="keys"):
        resumed.load_state_dict({"p": 0.1})


def test_controller_mistakes():
    for bad in (dict(interval=0), dict(target=2), dict(kimg=0), dict(p=-1)):
        with pytest.raises(GankitError):
            AdaptiveP(**bad)
