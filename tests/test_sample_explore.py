"""gankit sample after training: the Python API's images, grids, walks between latents, truncation, file names."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import TINY, gankit as cli


def train_tiny(out_dir, **changes):
    from gankit.recipe import validate
    from gankit.training.trainer import train

    recipe = copy.deepcopy(TINY) | changes
    recipe["out_dir"] = str(out_dir)
    return train(validate(recipe))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="module")
def cond_dir(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("cond"), name="cond",
                      generator={"name": "dcgan_cond", "nz": 8, "ngf": 8, "num_classes": 10},
                      discriminator={"name": "dcgan_projection", "ndf": 8, "num_classes": 10})


def pixels(path) -> np.ndarray:
    """A grey image's pixels (torchvision writes grey grids as RGB with equal channels)."""
    with Image.open(path) as img:
        return np.asarray(img.convert("L"))


def tile(array: np.ndarray, row: int, col: int, size: int = 16, pad: int = 2) -> np.ndarray:
    """The image at (row, col) of a torchvision grid (2-pixel padding)."""
    top, left = pad + row * (size + pad), pad + col * (size + pad)
    return array[top: top + size, left: left + size]


def test_the_python_api_gives_the_bytes_of_gankit_sample(run_dir, tmp_path):
    import gankit

    steps = {p: p.read_bytes() for p in (run_dir / "samples").glob("step_*.png")}
    code, out, err = cli("sample", run_dir, "--num", "16", "--seed", "0", "--grid")
    assert code == 0, err
    written = run_dir / "samples" / "sample_seed0.png"  # the default folder and name
    assert f"wrote {written}" in out
    G = gankit.load_generator(run_dir)
    gankit.save_grid(gankit.generate(G, 16, seed=0), tmp_path / "api.png")
    assert written.read_bytes() == (tmp_path / "api.png").read_bytes()
    assert {p: p.read_bytes() for p in (run_dir / "samples").glob("step_*.png")} == steps  # training grids untouched


def test_separate_files_scale_nrow_name_and_a_checkpoint_files_folder(run_dir, tmp_path):
    code, _, err = cli("sample", run_dir, "--num", "3", "--out", tmp_path / "one", "--scale", "2")
    assert code == 0, err
    files = sorted((tmp_path / "one").iterdir())
    assert [f.name for f in files] == [f"sample_seed0_{i:05d}.png" for i in range(3)]
    assert pixels(files[0]).shape == (32, 32)
    code, _, err = cli("sample", run_dir / "checkpoints" / "last.pt", "--num", "16", "--grid", "--nrow", "8",
                          "--scale", "4", "--name", "wide", "--seed", "5")
    assert code == 0, err
    grid = pixels(run_dir / "samples" / "wide.png")  # a checkpoint file's run: its samples folder
    assert grid.shape == (4 * (2 * 18 + 2), 4 * (8 * 18 + 2))  # 2 rows of 8, 2-pixel padding, x4
    assert np.array_equal(grid[::4, ::4], pixels_of_seed(run_dir, 5, nrow=8, n=16))  # nearest neighbour


def pixels_of_seed(run_dir, seed, nrow, n):
    import gankit
    from gankit.sampling.images import grid_image

    images = gankit.generate(gankit.load_generator(run_dir), n, seed=seed)
    return grid_image(images, nrow=nrow)[0].numpy()


def test_interpolation_grid_and_gif(run_dir, tmp_path):
    code, out, err = cli("sample", run_dir, "--interpolate", "6", "--num", "3", "--gif", "--out", tmp_path)
    assert code == 0, err
    grid = pixels(tmp_path / "interp_slerp_seed0.png")
    assert grid.shape == (3 * 18 + 2, 6 * 18 + 2)  # one walk a row, 6 steps a walk
    for row in range(2):  # row i walks from latent i to latent i + 1: its end is the next row's start
        assert np.array_equal(tile(grid, row, 5), tile(grid, row + 1, 0))
    assert not np.array_equal(tile(grid, 0, 0), tile(grid, 0, 5))
    with Image.open(tmp_path / "interp_slerp_seed0.gif") as gif:
        assert gif.n_frames == 10 and gif.info["loop"] == 0  # 6 steps forth, 4 back
        assert gif.size == (2 * 18 + 2, 2 * 18 + 2)  # 3 walks as tiles of a square
        gif.seek(5)  # the last step: each tile is its walk's end
        last = np.asarray(gif.convert("L"))
    assert np.array_equal(tile(last, 0, 0), tile(grid, 0, 5))  # grey GIFs are exact
    code, _, err = cli("sample", run_dir, "--interpolate", "6", "--num", "3", "--lerp", "--out", tmp_path)
    assert code == 0, err
    straight = pixels(tmp_path / "interp_lerp_seed0.png")
    # the same ends, another path (and, BatchNorm using the batch's statistics, the ends' pixels move a little too)
    assert not np.array_equal(tile(straight, 0, 3), tile(grid, 0, 3))


def test_slerp_keeps_the_norm_between_the_ends():
    from gankit.sampling import interpolation, lerp

    a, b = torch.randn(64, generator=torch.Generator().manual_seed(0)), torch.randn(64)
    path = interpolation(a, b, 5, "slerp")
    assert torch.allclose(path[0], a, atol=1e-6) and torch.allclose(path[-1], b, atol=1e-5)
    norms = path.norm(dim=1)
    assert torch.allclose(norms, torch.linspace(float(a.norm()), float(b.norm()), 5), atol=1e-4)
    assert lerp(a, b, torch.tensor([0.5]))[0].norm() < norms[2] - 1  # the straight line cuts inside


def test_truncation_for_z_only_and_for_generators_with_their_own(run_dir, tmp_path):
    import gankit
    from gankit.core.plugins import registry
    from gankit.sampling import fixed_noise, sampling_mode, truncated_noise

    z = truncated_noise(100, 8, 0, 0.5)
    assert z.abs().max() <= 0.5 and z.std() > 0.2
    code, _, err = cli("sample", run_dir, "--num", "4", "--grid", "--truncation", "0.5", "--out", tmp_path)
    assert code == 0 and (tmp_path / "sample_seed0_psi0.5.png").is_file(), err
    code, _, err = cli("sample", run_dir, "--truncation", "0", "--out", tmp_path)
    assert code == 2 and "--truncation must be > 0" in err
    torch.manual_seed(0)
    G = registry("generators").build("stylegan2", nz=8, w_dim=8, channel_base=256, channel_max=8, image_size=16,
                                     channels=1, mapping_layers=2).eval()
    G.mapping.w_avg.normal_()
    with sampling_mode(G, seed=0):
        want = G(fixed_noise(4, 8, 0), truncation_psi=0.5)  # its own trick: w toward w_avg, z untouched
    assert torch.equal(gankit.generate(G, 4, seed=0, truncation=0.5), want)


def test_class_conditional_sampling(cond_dir, tmp_path):
    import gankit

    code, _, err = cli("sample", cond_dir, "--class", "3", "--num", "4", "--grid", "--out", tmp_path)
    assert code == 0 and (tmp_path / "sample_seed0_class3.png").is_file(), err
    G = gankit.load_generator(cond_dir)
    gankit.save_grid(gankit.generate(G, 4, seed=0, labels=3), tmp_path / "api.png")
    assert (tmp_path / "api.png").read_bytes() == (tmp_path / "sample_seed0_class3.png").read_bytes()
    code, _, err = cli("sample", cond_dir, "--interpolate", "3", "--num", "2", "--gif", "--out", tmp_path)
    assert code == 0 and (tmp_path / "interp_slerp_seed0.gif").is_file(), err
    from gankit.core.errors import GankitError

    with pytest.raises(GankitError, match="labels must be 4 integers"):
        gankit.generate(G, 4, labels=[1, 2])
    with pytest.raises(GankitError, match="labels must be in 0..9"):
        gankit.generate(G, 2, labels=[0, 10])


@pytest.mark.parametrize("argv,message", [
    (["--class", "3"], "--class 3: generator 'dcgan' is not class-conditional"),
    (["--gif"], "--gif needs --interpolate K"),
    (["--lerp"], "--slerp/--lerp needs --interpolate K"),
    (["--interpolate", "1"], "--interpolate needs at least 2 steps"),
    (["--scale", "0"], "--scale must be a whole number >= 1"),
    (["--num", "0"], "--num must be at least 1"),
    (["--interpolate", "4", "--nrow", "2"], "--nrow with --interpolate lays out the GIF's tiles: add --gif"),
    (["--name", "a/b"], "give a file name without folders"),
    (["--grid", "--name", "step_0000004"], "is one of the run's training grids and would be replaced"),
])
def test_mistakes_are_clear(run_dir, argv, message):
    code, _, err = cli("sample", run_dir, *argv)
    assert code == 2 and err.startswith("error: ") and message in err, err


def test_labels_for_an_unconditional_generator_are_an_error(run_dir):
    import gankit
    from gankit.core.errors import GankitError

    with pytest.raises(GankitError, match="not class-conditional"):
        gankit.generate(gankit.load_generator(run_dir), 2, labels=[0, 1])
