"""DiffAugment: shapes, differentiability, what each transform does, its random streams, policy mistakes."""

import pytest
import torch

import gankit
from gankit.augment import DiffAugment, brightness, cutout, translation
from gankit.core.errors import GankitError

POLICIES = ["color", "translation", "cutout", "color,translation,cutout", "cutout, color"]


def images(n=5, c=3, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=g) * 2 - 1


def test_registered_with_the_papers_default_policy():
    aug = gankit.registry("augmentations").build("diffaugment")
    assert aug.policy == ["color", "translation", "cutout"]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("c,size", [(1, 16), (3, 32), (3, 12)])
def test_shape_dtype_and_gradients(policy, c, size):
    x = images(c=c, size=size).requires_grad_(True)
    out = DiffAugment(policy)(x, generator=torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    out.square().sum().backward()  # G learns through the augmentation
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_a_generator_makes_it_reproducible_and_leaves_the_global_stream_alone():
    x, aug = images(), DiffAugment()
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = aug(x, generator=torch.Generator().manual_seed(3))
    b = aug(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), state)  # the training's stream did not move
    assert torch.equal(a, b)
    assert not torch.equal(a, aug(x, generator=torch.Generator().manual_seed(4)))


def test_without_a_generator_draws_come_from_the_global_stream():
    x, aug = images(), DiffAugment()
    torch.manual_seed(5)
    a = aug(x)
    torch.manual_seed(5)
    assert torch.equal(a, aug(x))


def test_each_image_gets_its_own_draw():
    x = images(n=8, seed=2)[:1].expand(8, -1, -1, -1).contiguous()  # eight copies of one image
    out = DiffAugment()(x, generator=torch.Generator().manual_seed(0))
    assert len({tuple(o.flatten()[:64].tolist()) for o in out}) > 1


def test_brightness_shifts_each_image_by_at_most_a_half():
    x = images()
    shift = brightness(x, torch.Generator().manual_seed(0)) - x
    per_image = shift.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-6)  # one shift per image
    assert per_image.abs().max() <= 0.5


def shifted(img, dy, dx):
    """img moved by (dy, dx) pixels, zeros coming in."""
    out = torch.zeros_like(img)
    h, w = img.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = img[..., max(-dy, 0):h - max(dy, 0),
                                                                             max(-dx, 0):w - max(dx, 0)]
    return out


def test_translation_is_a_shift_of_at_most_an_eighth_with_zeros_coming_in():
    x = images(n=12, size=16)
    out = translation(x, torch.Generator().manual_seed(0))
    found = set()
    for img, moved in zip(x, out):
        shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(moved, shifted(img, dy, dx))]
        assert len(shifts) == 1  # 2 = 1/8 of 16
        found.add(shifts[0])
    assert len(found) > 1


def test_cutout_zeroes_one_square_of_half_the_size_at_most():
    x = torch.ones(20, 1, 16, 16)
    out = cutout(x, torch.Generator().manual_seed(0))
    zeros = (out == 0).flatten(1).sum(1)
    assert (zeros > 0).all() and (zeros <= 8 * 8).all()
    assert (zeros == 64).any()  # away from the border the whole 8 x 8 square


def test_color_leaves_grey_saturation_alone():
    x = images(c=1)
    from gankit.augment import saturation

    assert torch.equal(saturation(x, torch.Generator().manual_seed(0)), x)


@pytest.mark.parametrize("policy,match", [
    ("colour", "'colour' is not a DiffAugment transform; did you mean 'color'"),
    ("color,,cutout", "empty entry"),
    ("", "policy is empty"),
    ("cutout,cutout", "names cutout more than once"),
    (["color"], "comma-separated string"),
])
def test_policy_mistakes_are_clear(policy, match):
    with pytest.raises(GankitError, match=match):
        DiffAugment(policy)


def test_images_must_be_a_batch():
    with pytest.raises(ValueError, match="N x C x H x W"):
        DiffAugment()(torch.zeros(3, 8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cpu_generator_serves_images_on_the_gpu():
    x = images().cuda()
    a = DiffAugment()(x, generator=torch.Generator().manual_seed(0))
    b = DiffAugment()(x.cpu(), generator=torch.Generator().manual_seed(0))
    assert a.device == x.device and torch.allclose(a.cpu(), b, atol=1e-5)
