"""``data.mirror``: the dataset and its x-flipped copies (the official ``--mirror=1``), in every data path.

Items N..2N-1 are items 0..N-1 flipped left-right; the data cache's batches
are the DataLoader's over the mirrored dataset; a mirrored run resumes bit
for bit; evaluation reads the dataset itself; the R3GAN recipes mirror, as
the authors' commands do. Also the torchrun data layout the global batch
needs: each step's global batch is the next run of the order, rank r taking
its r-th block.
"""

import pytest
import torch
import yaml

from gankit.data.cache import cache_dataset
from gankit.data.cached_loader import CachedBatches
from gankit.data.common import BadImage
from gankit.data.datasets.digits import digits
from gankit.data.labels import dataset_labels
from gankit.data.mirror import Mirrored
from gankit.data.sampler import ResumableSampler
from gankit.recipe import load_recipe, validate
from gankit.rundir.checkpoint import load_checkpoint
from gankit.recipe.build import build_dataset
from gankit.training.assemble import build_training_data
from gankit.training.state import prepare_resume
from gankit.training.trainer import Trainer, train
from helpers import REPO, states_equal
from test_data_cache import loader_batches


class Listed(torch.utils.data.Dataset):
    """A few items, one of them unreadable."""

    def __init__(self, n=5):
        self.items = [(torch.arange(6.0).reshape(1, 2, 3) + 10 * i, i) for i in range(n)]
        self.items[2] = BadImage("x.png", "truncated")

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_the_copies_are_the_images_flipped_left_right():
    base = Listed()
    mirrored = Mirrored(base)
    assert len(mirrored) == 10
    for i in (0, 1, 3, 4):
        image, label = mirrored[i + 5]
        assert torch.equal(mirrored[i][0], base[i][0]) and label == i
        assert torch.equal(image, base[i][0].flip(-1))  # x: the width axis
    assert mirrored[2] == mirrored[7] == base[2]  # unreadable either way
    assert torch.equal(mirrored[-1][0], mirrored[9][0])
    with pytest.raises(IndexError):
        mirrored[10]


def test_labels_are_listed_for_the_copies_too():
    ds = digits(8, 1)
    labels = dataset_labels(ds)
    assert labels.dtype == torch.int64 and len(labels) == 1797
    assert torch.equal(dataset_labels(Mirrored(ds)), torch.cat([labels, labels]))
    assert dataset_labels(Listed()) is None  # a dataset that does not list its labels


@pytest.mark.parametrize("seed, epoch, start, drop_last", [(0, 0, 0, False), (3, 1, 7, True), (5, 2, 13, False)])
def test_cached_batches_are_the_dataloaders_over_the_mirrored_dataset(tmp_path, seed, epoch, start, drop_last):
    source = torch.utils.data.Subset(digits(8, 3), range(23))
    cached = cache_dataset(source, {"dataset": "digits23", "image_size": 8, "channels": 3}, tmp_path,
                           log=lambda m: None)
    reference = ResumableSampler(46, seed)
    reference.set_position(epoch, start)
    expected, length = loader_batches(Mirrored(cached), 5, reference, drop_last)
    batches = CachedBatches(cached, 5, ResumableSampler(46, seed), "cpu", drop_last=drop_last, mirror=True)
    batches.set_position(epoch, start)
    got = list(batches)
    assert len(got) == length == len(batches)
    for (xi, xl, _), (gi, gl, _) in zip(expected, got):
        assert torch.equal(xi, gi) and torch.equal(xl, gl)
    with pytest.raises(ValueError, match="46 items but the cache holds 23"):
        CachedBatches(cached, 5, ResumableSampler(46, seed), "cpu")


@pytest.mark.parametrize("cache", [False, True])
def test_a_mirrored_run_trains_on_both_halves_and_resumes_exactly(tiny, tmp_path, cache):
    tiny["data"].update(mirror=True, batch_size=512, cache=cache, cache_dir=str(tmp_path / "cache"))
    tiny["train"].update(steps=9, sample_every=None, checkpoint_every=None)  # 3,594 items: 8 batches a pass
    recipe = validate(tiny)
    assert len(build_training_data(recipe)) == 2 * 1797 and len(build_dataset(recipe)) == 1797  # eval: unmirrored
    whole = load_checkpoint(train(recipe))
    assert (whole["epoch"], whole["batch_in_epoch"]) == (1, 1)  # 7 batches of 512 and one of 10 a mirrored pass
    tiny["train"]["steps"] = 3
    half = train(validate(tiny))
    resumed_recipe, ck, run_dir = prepare_resume(half, ["train.steps=9"])
    Trainer(resumed_recipe, resume=ck, run_dir=run_dir).run()
    resumed = load_checkpoint(half)
    for key in ("generator", "discriminator", "optim_g", "optim_d", "epoch", "batch_in_epoch"):
        assert states_equal(whole[key], resumed[key]), key


def test_the_r3gan_recipes_mirror_as_the_authors_commands():
    for name in ("r3gan_cifar10", "r3gan_cifar10_cond", "r3gan_ffhq64"):
        assert load_recipe(REPO / "recipes" / f"{name}.yaml").data.mirror, name
    raw = yaml.safe_load((REPO / "recipes" / "r3gan_tiny.yaml").read_text())
    assert not raw["data"].get("mirror")  # handwritten digits are not mirror images of digits


@pytest.mark.parametrize("size, world, block", [(23, 2, 4), (40, 4, 3), (7, 3, 5), (64, 2, 8)])
def test_ranks_take_consecutive_blocks_of_each_global_batch(size, world, block):
    one = ResumableSampler(size, 5).order(2)
    ranks = [ResumableSampler(size, 5, rank=r, world=world, block=block).order(2) for r in range(world)]
    per_rank = -(-size // world)
    assert all(len(o) == per_rank for o in ranks)
    padded = (one * world)[:per_rank * world]  # padded with its first items to a multiple of the world
    steps = per_rank // block
    for s in range(steps):  # every full global batch: rank r's block r, in order
        together = [i for r in range(world) for i in ranks[r][s * block:(s + 1) * block]]
        assert together == padded[s * world * block:(s + 1) * world * block]
    tail = padded[steps * world * block:]
    assert [o[steps * block:] for o in ranks] == [tail[r::world] for r in range(world)]  # the rest: strided
