"""Speed-ups that must not change what a user gets: each against the straightforward version."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.eval import images as img
from gankit.eval import swd


def _sliced_wasserstein_plain(a, b, generator):
    """The definition as the reference implementation writes it (numpy's matmul, sort along axis 0), float64."""
    n = min(a.shape[0], b.shape[0])
    a = a[torch.randperm(a.shape[0], generator=generator)[:n]]
    b = b[torch.randperm(b.shape[0], generator=generator)[:n]]
    results = []
    for _ in range(swd.DIR_REPEATS):
        dirs = torch.randn(a.shape[1], swd.DIRS_PER_REPEAT, generator=generator, dtype=torch.float64)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        results.append(float(((a @ dirs).sort(dim=0).values - (b @ dirs).sort(dim=0).values).abs().mean()))
    return sum(results) / len(results)


@pytest.mark.parametrize("threads", [1, 2])
def test_sliced_wasserstein_is_the_plain_definition(threads):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3000, 49, generator=g, dtype=torch.float64)
    b = torch.randn(2500, 49, generator=g, dtype=torch.float64) * 1.2 + 0.1
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # the sort runs in row blocks over this many threads
    try:
        fast = swd.sliced_wasserstein(a, b, torch.Generator().manual_seed(1))
    finally:
        torch.set_num_threads(before)
    assert fast == pytest.approx(_sliced_wasserstein_plain(a, b, torch.Generator().manual_seed(1)), rel=1e-6)


def test_batches_quantise_as_one_image_at_a_time():
    g = torch.Generator().manual_seed(0)
    items = [(torch.rand(1, 8, 8, generator=g) * 2.2 - 1.1, 0) for _ in range(7)]
    items.insert(3, (torch.rand(1, 6, 6, generator=g) * 2 - 1, 0))  # another size: its own batch
    got = list(img.batches(items, range(len(items)), batch_size=3))
    singles = [img.quantise(image) for image, _ in items]
    assert [b.shape[0] for b in got] == [3, 1, 3, 1]
    assert torch.equal(torch.cat([b.reshape(b.shape[0], -1) for b in got if b.shape[-1] == 8]),
                       torch.stack([s for s in singles if s.shape[-1] == 8]).reshape(7, -1))
    assert all(b.dtype == torch.uint8 for b in got)
    with pytest.raises(Exception, match="NaN or infinite"):
        list(img.batches([(torch.full((1, 4, 4), math.nan), 0)], [0], batch_size=2))
