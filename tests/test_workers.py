"""DataLoader workers: started clean by a fork server, kept across epochs, and honest about what failed."""

from __future__ import annotations

import os

import pytest
import torch
from torch.utils.data import Dataset

from gankit.core.errors import GankitError
from gankit.data.common import BadImage
from gankit.data.sampler import ResumableSampler
from gankit.data.transforms import try_load_image
from gankit.data.workers import worker_failure
from gankit.recipe import validate
from gankit.training.assemble import build_batches


class WhoReads(Dataset):
    """Items labelled with the process that read them."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.zeros(1, 4, 4), os.getpid()


class NeedsAMissingModule(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        import a_module_that_is_not_installed  # noqa: F401

        return torch.zeros(1, 4, 4), 0


def loader(tiny, dataset, workers=2):
    tiny["data"].update(workers=workers, batch_size=4)
    return build_batches(validate(tiny), dataset, ResumableSampler(len(dataset), 0), torch.device("cpu"),
                         torch.Generator().manual_seed(0))


def test_workers_are_not_forked_from_the_training_process_and_persist_across_epochs(tiny):
    batches = loader(tiny, WhoReads())
    pids = set()
    for _ in range(3):  # three epochs
        for _, labels, _ in batches:
            pids.update(labels.tolist())
    assert os.getpid() not in pids and len(pids) == 2  # the same two workers read all three epochs
    assert batches.multiprocessing_context.get_start_method() in ("forkserver", "spawn")


def test_a_worker_failure_is_named_and_not_taken_for_a_bad_image(tiny):
    with pytest.raises(Exception) as raised:
        next(iter(loader(tiny, NeedsAMissingModule())))
    error = worker_failure(raised.value, "needs_a_missing_module")
    assert isinstance(error, GankitError)
    text = str(error)
    assert text.startswith("the data-loading worker could not import a module while reading dataset "
                           "'needs_a_missing_module': ModuleNotFoundError: No module named 'a_module_that_is_not_installed'")
    assert "test_workers.py:" in text and "fix or remove the file" not in text


def test_only_a_file_that_cannot_be_decoded_is_a_bad_image(tmp_path, monkeypatch):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    assert isinstance(try_load_image(broken, 8, 3), BadImage)

    good = tmp_path / "good.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(good)
    import gankit.data.transforms as transforms

    def failing_transform(*args):  # e.g. torchvision failing to import inside a worker
        raise ImportError("cannot import name 'functional' from torchvision.transforms")

    monkeypatch.setattr(transforms, "transform", failing_transform)
    with pytest.raises(ImportError, match="cannot import name 'functional'"):
        try_load_image(good, 8, 3)  # raised as itself: the file is fine
