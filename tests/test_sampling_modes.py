"""One answer to "what does this generator make for this z": the recipe's sampling.batchnorm, everywhere.

A tiny DCGAN run (digits, 16x16, BatchNorm in G) is trained once per module;
``load_generator(RUN)(z)``, ``gankit.generate``, ``gankit sample``, the
training grid and the pt2 / TorchScript / ONNX / state-dict files must all
give its images, and in ``running`` and ``standing`` an image must not
depend on the batch it is made in.
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch

import gankit
from gankit.core.plugins import get_host
from gankit.sampling import MODES, estimate_standing, fixed_noise, generate_from, prepare_for_sampling
from gankit.sampling.batchnorm import batchnorm_layers
from helpers import TINY, gankit as cli

GENERATORS = get_host().registry("generators").list()
NARROW = {"ngf": 8, "width": 8, "channel_base": 256, "channel_max": 8}


def train_tiny(out_dir, **sections):
    from gankit.recipe import validate
    from gankit.training.trainer import train

    recipe = copy.deepcopy(TINY) | {"out_dir": str(out_dir)} | copy.deepcopy(sections)
    return train(validate(recipe))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 4-step DCGAN run in the default mode, measured (SWD) at the end."""
    return train_tiny(tmp_path_factory.mktemp("sampling") / "runs",
                      eval={"metrics": ["swd"], "num_fake": 64, "num_real": 64, "batch_size": 16})


def test_the_default_mode_is_standing_and_checkpoints_hold_their_statistics(run_dir):
    from gankit.rundir.checkpoint import load_checkpoint

    assert gankit.load_recipe(run_dir / "recipe.yaml").sampling.batchnorm == "standing"
    for name in ("last.pt", "last.prev.pt"):
        saved = load_checkpoint(run_dir / "checkpoints" / name)["sampling"]
        assert saved["batchnorm"] == "standing" and saved["generator"] == "raw"
        assert sorted(saved["standing"]) == sorted(f"main.{i}.running_{s}" for i in (1, 4) for s in ("mean", "var"))


@pytest.mark.parametrize("mode", ["running", "standing"])
def test_an_image_depends_only_on_its_z(run_dir, mode):
    """The issue's check: one z at batch sizes 1, 7 and 64 (the CPU picks kernels by batch size: not bit-equal)."""
    G = gankit.load_generator(run_dir, batchnorm=mode)
    z = fixed_noise(64, G.nz, 5)
    full = G(z)
    for n in (1, 7):
        assert (G(z[:n]) - full[:n]).abs().max() <= 1e-6, (mode, n)
    for batch_size in (1, 7, 64):
        assert (generate_from(G, z, batch_size=batch_size) - full).abs().max() <= 1e-6, (mode, batch_size)


def test_batch_statistics_stay_available_and_couple_a_batch(run_dir):
    G = gankit.load_generator(run_dir, batchnorm="batch")
    z = fixed_noise(64, G.nz, 5)
    assert (G(z[:7]) - G(z)[:7]).abs().max() > 1e-3  # what the tutorial's grids do: the batch matters
    assert (G(z) - generate_from(gankit.load_generator(run_dir), z)).abs().max() > 1e-3  # and it is another mode


def test_g_of_z_generate_sample_grid_and_every_export_agree(run_dir, tmp_path):
    """The issue's "done when": the same images from every way of asking, within 1e-5."""
    from PIL import Image

    from gankit.runs.export import rebuild_generator

    G = gankit.load_generator(run_dir)
    z = fixed_noise(16, G.nz, 3)
    want = G(z)
    assert torch.equal(gankit.generate(G, 16, seed=3), want)

    code, _, err = cli("sample", run_dir, "--num", "16", "--seed", "3", "--grid", "--out", tmp_path)
    assert code == 0, err
    gankit.save_grid(want, tmp_path / "want.png")
    assert (tmp_path / "sample_seed3.png").read_bytes() == (tmp_path / "want.png").read_bytes()

    # the run's last training grid is the loaded generator's images of the run's fixed noise
    last = sorted((run_dir / "samples").glob("step_*.png"))[-1]
    from gankit.training.pictures import scale_for

    images = gankit.generate(G, TINY["train"]["num_samples"], seed=TINY["seed"])
    gankit.save_grid(images, tmp_path / "grid.png", scale=scale_for(images))  # training grids: tiles of >= 64 px
    with Image.open(last) as a, Image.open(tmp_path / "grid.png") as b:
        assert a.tobytes() == b.tobytes()

    import onnxruntime

    for fmt in ("pt2", "torchscript", "onnx", "state_dict"):
        out = tmp_path / f"g.{fmt}"
        code, printed, err = cli("export", run_dir, "--format", fmt, "--out", out, timeout=180)
        assert code == 0 and "BatchNorm on standing statistics" in printed, err
        for n in (16, 1):  # any batch size gives the same images
            if fmt == "pt2":
                got = torch.export.load(out).module()(z[:n])
            elif fmt == "torchscript":
                got = torch.jit.load(out)(z[:n])
            elif fmt == "onnx":
                session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
                got = torch.from_numpy(session.run(None, {"z": z[:n].numpy()})[0])
            else:
                got = rebuild_generator(out)(z[:n])
            assert (got - want[:n]).abs().max() <= 1e-5, (fmt, n)


def test_a_checkpoint_of_a_step_that_did_not_sample_is_not_held_up(tmp_path):
    """Statistics are stored where the step sampled (always the last); elsewhere loading estimates them."""
    from gankit.runs.loading import load_checkpoint_generator
    from gankit.rundir.checkpoint import load_checkpoint

    run = train_tiny(tmp_path / "runs", train={**TINY["train"], "sample_every": 3})  # grids at 3 and 4 only
    assert load_checkpoint(run / "checkpoints" / "last.prev.pt")["sampling"]["standing"] is None  # step 2
    assert load_checkpoint_generator(run / "checkpoints" / "last.prev.pt").standing == "estimated"
    assert load_checkpoint_generator(run).standing == "checkpoint"


def test_standing_statistics_are_read_from_the_checkpoint_not_estimated_again(run_dir, tmp_path, monkeypatch):
    import gankit.sampling.batchnorm as bn
    from gankit.runs.loading import load_checkpoint_generator
    from gankit.rundir.checkpoint import atomic_save, load_checkpoint

    stored = load_checkpoint_generator(run_dir)
    assert stored.standing == "checkpoint"

    def refuse(*args, **kwargs):
        raise AssertionError("standing statistics estimated again")

    monkeypatch.setattr(bn, "estimate_standing", refuse)
    assert load_checkpoint_generator(run_dir).standing == "checkpoint"
    monkeypatch.undo()
    # A checkpoint without them (an older run): estimated once on load, the same as training's estimate.
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    del state["sampling"]
    atomic_save(state, tmp_path / "old.pt")
    older = load_checkpoint_generator(tmp_path / "old.pt")
    assert older.standing == "estimated"
    z = fixed_noise(8, older.G.nz, 0)
    assert torch.allclose(older.G(z), stored.G(z), atol=1e-6, rtol=0)


def test_standing_statistics_are_the_plain_average_over_batches_and_leave_g_as_it_was():
    torch.manual_seed(0)
    G = gankit.registry("generators").build("dcgan", nz=8, ngf=8, image_size=16, channels=1).train()
    G(torch.randn(32, 8))  # running statistics of its own, which must come back untouched
    before = {k: v.clone() for k, v in G.state_dict().items()}
    stats = estimate_standing(G, batches=3, batch_size=5, seed=4)
    assert G.training and all(torch.equal(v, before[k]) for k, v in G.state_dict().items())
    first = batchnorm_layers(G)[0][0]  # main.1, after the first transposed convolution
    z = fixed_noise(15, 8, 4 + 7717)  # the estimate's private latents
    with torch.no_grad():
        h = [G.main[0](c[:, :, None, None]) for c in z.split(5)]
    mean = torch.stack([x.mean((0, 2, 3)) for x in h]).mean(0)
    var = torch.stack([x.var((0, 2, 3), unbiased=True) for x in h]).mean(0)
    assert torch.allclose(stats[f"{first}.running_mean"], mean, atol=1e-6)
    assert torch.allclose(stats[f"{first}.running_var"], var, atol=1e-5)


def _call(G, z):
    """G(z) with StyleGAN2's noise inputs constant (random noise would make the batch matter by itself)."""
    return G(z, noise_mode="const") if "noise_mode" in inspect.signature(G.forward).parameters else G(z)


@pytest.mark.parametrize("mode", ["running", "standing"])
@pytest.mark.parametrize("name", GENERATORS)
def test_every_registered_generator_samples_independently_of_its_batch(name, mode):
    torch.manual_seed(0)
    G = gankit.registry("generators").build(name, {"image_size": 32, "channels": 3, **NARROW})
    with torch.no_grad():
        for _ in range(3):  # training-mode batches: running statistics that are not the initial ones
            _call(G.train(), torch.randn(16, G.nz))
    prepare_for_sampling(G, mode, batches=2, batch_size=8)
    z = fixed_noise(64, G.nz, 1)
    with torch.no_grad():
        full = _call(G, z)
        for n in (1, 7):
            # float rounding of the kernels picked per batch size only (SNGAN's: ~1.5e-6)
            assert (_call(G, z[:n]) - full[:n]).abs().max() <= 1e-5, (name, mode, n)


def test_a_generator_without_batchnorm_is_the_same_in_every_mode():
    torch.manual_seed(0)
    G = gankit.registry("generators").build("stylegan2", nz=8, w_dim=8, channel_base=256, channel_max=8,
                                              image_size=16, channels=1, mapping_layers=2)
    z = fixed_noise(4, 8, 0)
    outs = [_call(prepare_for_sampling(copy.deepcopy(G), mode), z) for mode in MODES]
    assert estimate_standing(G) == {} and all(torch.equal(o, outs[0]) for o in outs)


def test_sampling_never_changes_the_training(tmp_path):
    """Standing statistics estimated at every grid and checkpoint: the weights are those of a batch-mode run."""
    from gankit.rundir.checkpoint import load_checkpoint

    a = load_checkpoint(train_tiny(tmp_path / "a", sampling={"batchnorm": "standing"}))
    b = load_checkpoint(train_tiny(tmp_path / "b", sampling={"batchnorm": "batch"}))
    for part in ("generator", "discriminator"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    assert b["sampling"] == {**a["sampling"], "batchnorm": "batch", "standing": None}


def test_the_eval_rows_record_the_mode(run_dir):
    rows = [r for r in gankit.load_run(run_dir).eval_rows if r.get("metric") == "swd"]
    assert rows and all(r["batchnorm"] == "standing" for r in rows)


def test_a_misspelt_mode_is_a_recipe_error(write_recipe, tiny):
    tiny["sampling"] = {"batchnorm": "standng"}
    code, _, err = cli("validate", write_recipe(tiny))
    assert code == 2 and "sampling.batchnorm" in err and "standing" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as stopped:  # argparse's own usage error
        cli("sample", "nowhere", "--batchnorm", "standng")
    assert stopped.value.code == 2
    from gankit.core.errors import GankitError

    with pytest.raises(GankitError, match="batchnorm: 'standng' is not a BatchNorm sampling mode; did you mean"):
        prepare_for_sampling(torch.nn.BatchNorm2d(3), "standng")


def test_an_old_state_dict_export_keeps_sampling_on_batch_statistics(run_dir):
    """Version 1 files (before sampling.batchnorm) were made for batch statistics: they still give those images."""
    from gankit.runs.export import rebuild_generator, state_dict_file
    from gankit.runs.loading import load_checkpoint_generator

    loaded = load_checkpoint_generator(run_dir, batchnorm="running")  # full state dict, running statistics kept
    saved = state_dict_file(loaded.G, loaded.recipe, loaded.ema, "running")
    saved.pop("batchnorm")
    saved["version"] = 1
    z = fixed_noise(8, loaded.G.nz, 2)
    want = gankit.load_generator(run_dir, batchnorm="batch")(z)
    assert torch.allclose(rebuild_generator(saved)(z), want, atol=1e-6, rtol=0)
