"""``imagefolder``'s ``resize: lanczos`` prepares images as the official ``dataset_tool.py --transform=center-crop``
of StyleGAN2-ADA and R3GAN (the centre square, then Lanczos), bit for bit; the tutorial's is the default."""

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data.datasets.imagefolder import imagefolder
from gankit.data.transforms import transform


def official_center_crop(arr: np.ndarray, size: int) -> np.ndarray:
    """dataset_tool.py's center_crop, written out: the centre square of the array, resized with Lanczos."""
    h, w = arr.shape[:2]
    crop = min(h, w)
    arr = arr[(h - crop) // 2:(h + crop) // 2, (w - crop) // 2:(w + crop) // 2]
    return np.asarray(Image.fromarray(arr, "RGB").resize((size, size), Image.LANCZOS))


@pytest.mark.parametrize("shape", [(218, 178), (178, 218), (100, 100), (37, 64)])
def test_lanczos_is_the_dataset_tools_centre_crop(shape):
    arr = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    expected = torch.from_numpy(official_center_crop(arr, 32).copy()).permute(2, 0, 1).float() / 255 * 2 - 1
    assert torch.equal(transform(Image.fromarray(arr), 32, 3, "lanczos"), expected)
    assert not torch.equal(transform(Image.fromarray(arr), 32, 3), expected)  # the tutorial's resize differs


def test_imagefolder_takes_it_and_the_face_recipes_use_it(tmp_path):
    from gankit.recipe import load_recipe
    from helpers import REPO

    arr = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    image, label = imagefolder(str(tmp_path), 16, 3, resize="lanczos")[0]
    assert torch.equal(image, torch.from_numpy(official_center_crop(arr, 16).copy()).permute(2, 0, 1) / 255 * 2 - 1)
    for name in ("r3gan_ffhq64", "stylegan2_celeba64"):
        assert load_recipe(REPO / "recipes" / f"{name}.yaml").data.args["resize"] == "lanczos"
