"""gankit export: pt2, TorchScript, ONNX and state-dict files that reproduce the generator, loadable without gankit.

Tiny runs (digits, nz 8, widths 8, 4 steps) of DCGAN, conditional DCGAN and
SNGAN are exported through the command line once per module; StyleGAN2 and
R3GAN are built small from the registry.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap

import pytest
import torch

from helpers import TINY, gankit as cli

FAMILIES = {
    "dcgan": {},
    "dcgan_cond": {"generator": {"name": "dcgan_cond", "nz": 8, "ngf": 8, "num_classes": 10},
                   "discriminator": {"name": "dcgan_projection", "ndf": 8, "num_classes": 10}},
    "sngan": {"generator": {"name": "sngan_resnet", "nz": 8, "width": 8},
              "discriminator": {"name": "sngan_resnet", "width": 8}, "data": {**TINY["data"], "image_size": 32}},
}
FORMATS = ("pt2", "torchscript", "onnx", "state_dict")


def train_tiny(out_dir, family: str):
    from gankit.recipe import validate
    from gankit.training.trainer import train

    recipe = copy.deepcopy(TINY) | copy.deepcopy(FAMILIES[family])
    recipe.update(name=family, out_dir=str(out_dir))
    return train(validate(recipe))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{family: (run_dir, {format: (file, what the command printed)})}, every file written by `gankit export`."""
    root = tmp_path_factory.mktemp("export")
    found = {}
    for family in FAMILIES:
        run_dir = train_tiny(root / "runs", family)
        files = {}
        for fmt in FORMATS:
            out = root / "files" / f"{family}.{fmt}"
            code, printed, err = cli("export", run_dir, "--format", fmt, "--out", out, timeout=180)
            assert code == 0, err
            files[fmt] = (out, printed)
        found[family] = (run_dir, files)
    return found


def eager(run_dir, z, labels=None):
    """What gankit sample computes for the batch z: the reference every export must meet."""
    from gankit.runs.loading import load_generator
    from gankit.sampling import generate_from

    return generate_from(load_generator(run_dir), z, labels)


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_format_is_written_checked_and_reported(exported, family):
    run_dir, files = exported[family]
    for fmt, (path, printed) in files.items():
        assert path.is_file(), fmt
        assert f"wrote {path} ({fmt}" in printed and "max |exported - eager| = " in printed, printed
        diff = float(printed.split("max |exported - eager| = ")[1].split(")")[0].split(";")[0])
        assert diff <= 1e-5, (fmt, printed)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no staging folder left behind


@pytest.mark.slow
def test_the_files_run_without_gankit_on_any_batch_size(exported, tmp_path):
    """torch.export.load, torch.jit.load and onnxruntime in a Python that cannot import gankit or its plugins."""
    jobs = {}
    for family, (run_dir, files) in exported.items():
        conditional = family == "dcgan_cond"
        for n in (3, 7):
            z = torch.randn(n, 8, generator=torch.Generator().manual_seed(n))
            labels = (torch.arange(n) * 3) % 10 if conditional else None
            torch.save({"z": z, "labels": labels}, tmp_path / f"{family}-{n}.in.pt")
            jobs[f"{family}-{n}"] = (run_dir, z, labels, {f: str(files[f][0]) for f in ("pt2", "torchscript", "onnx")},
                                     str(files["state_dict"][0]))
    script = textwrap.dedent("""
        import importlib.abc, json, sys
        class NoGankit(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0].startswith("gankit"):
                    raise ImportError("gankit is not installed here: " + name)
        sys.meta_path.insert(0, NoGankit())
        import numpy, onnxruntime, torch
        jobs, folder = json.loads(sys.argv[1]), sys.argv[2]
        for key, (files, state_dict) in jobs.items():
            inputs = torch.load(f"{folder}/{key}.in.pt", weights_only=True)
            args = [inputs["z"]] + ([inputs["labels"]] if inputs["labels"] is not None else [])
            out = {"pt2": torch.export.load(files["pt2"]).module()(*args),
                   "torchscript": torch.jit.load(files["torchscript"])(*args)}
            session = onnxruntime.InferenceSession(files["onnx"], providers=["CPUExecutionProvider"])
            feed = {"z": args[0].numpy()} | ({"labels": args[1].numpy()} if len(args) == 2 else {})
            out["onnx"] = torch.from_numpy(session.run(["images"], feed)[0])
            saved = torch.load(state_dict, weights_only=True)  # plain tensors and values
            out["state_dict_keys"] = sorted(saved["state_dict"])
            torch.save(out, f"{folder}/{key}.out.pt")
        assert not [m for m in sys.modules if m.startswith("gankit")]
    """)
    arg = json.dumps({k: (files, sd) for k, (_, _, _, files, sd) in jobs.items()})
    result = subprocess.run([sys.executable, "-c", script, arg, str(tmp_path)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for key, (run_dir, z, labels, _, _) in jobs.items():
        out = torch.load(tmp_path / f"{key}.out.pt", weights_only=True)
        want = eager(run_dir, z, labels)
        for fmt in ("pt2", "torchscript", "onnx"):
            assert out[fmt].shape == want.shape, (key, fmt)
            assert (out[fmt] - want).abs().max() <= 1e-5, (key, fmt, float((out[fmt] - want).abs().max()))
        from gankit.runs.loading import load_generator

        assert out["state_dict_keys"] == sorted(load_generator(run_dir).state_dict())


def test_an_export_gives_the_images_of_gankit_sample(exported):
    """The pt2 file on the seed's latents gives generate's images, and load_generator(RUN)(z)'s, at any batch size."""
    import gankit
    from gankit.sampling import fixed_noise

    for family in ("dcgan", "sngan"):
        run_dir, files = exported[family]
        G = gankit.load_generator(run_dir)
        images = gankit.generate(G, 16, seed=0)
        model = torch.export.load(files["pt2"][0]).module()
        z = fixed_noise(16, G.nz, 0)
        assert torch.allclose(model(z), images, atol=1e-6, rtol=0)
        assert torch.allclose(G(z), images, atol=1e-6, rtol=0)
        # standing statistics (the default) are fixed: one image alone is the image of the batch (up to the
        # float rounding of the convolution kernels the CPU picks for a batch size: ~1e-6 for SNGAN here)
        assert torch.allclose(model(z[:1]), images[:1], atol=1e-5, rtol=0)


def test_the_state_dict_file_rebuilds_the_generator(exported):
    from gankit.runs.export import rebuild_generator
    from gankit.sampling import fixed_noise, generate_from

    run_dir, files = exported["dcgan_cond"]
    saved = torch.load(files["state_dict"][0], weights_only=True)
    assert saved["generator"] == {"name": "dcgan_cond", "nz": 8, "ngf": 8, "num_classes": 10}
    assert saved["data"] == {"image_size": 16, "channels": 1} and saved["num_classes"] == 10
    G = rebuild_generator(files["state_dict"][0])
    z, labels = fixed_noise(6, 8, 1), torch.tensor([0, 1, 2, 7, 8, 9])
    assert torch.equal(generate_from(G, z, labels), eager(run_dir, z, labels))


def test_onnx_without_the_extra_names_it(exported, monkeypatch, tmp_path):
    run_dir, _ = exported["dcgan"]
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript now raises ImportError
    code, _, err = cli("export", run_dir, "--format", "onnx", "--out", tmp_path / "g.onnx")
    assert code == 2 and err.startswith("error: --format onnx needs the export extra (onnxscript not installed)")
    assert "pip install 'gankit[export]'" in err and "Traceback" not in err
    assert not (tmp_path / "g.onnx").exists()


def test_a_file_that_does_not_reproduce_the_generator_is_an_error_and_not_kept(exported, monkeypatch, tmp_path):
    from gankit.runs import export

    run_dir, _ = exported["dcgan"]
    real = export._run_file
    monkeypatch.setattr(export, "_run_file", lambda fmt, path, inputs: real(fmt, path, inputs) + 3e-4)
    code, _, err = cli("export", run_dir, "--format", "torchscript", "--out", tmp_path / "g.pt")
    assert code == 2 and "max |exported - eager| = 0.0003 > 1e-05" in err, err
    assert "nothing was written" in err and list(tmp_path.iterdir()) == []


def test_the_command_offers_every_format_without_importing_torch_to_parse():
    from gankit.commands import export as command
    from gankit.runs import export

    assert command.FORMATS == export.FORMATS
    probe = "import sys; from gankit import cli; cli.build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"


def test_mistakes_are_clear(exported, tmp_path):
    run_dir, _ = exported["dcgan"]
    code, _, err = cli("export", run_dir, "--format", "pt2", "--truncation", "0.7", "--out", tmp_path / "g.pt2")
    assert code == 2 and "--truncation 0.7: generator DCGANGenerator has no truncation of its own" in err
    code, _, err = cli("export", run_dir, "--format", "pt2", "--out", tmp_path)
    assert code == 2 and f"--out {tmp_path} is a folder" in err
    code, out, _ = cli("export", run_dir / "checkpoints" / "last.pt", "--format", "torchscript")
    assert code == 0 and (run_dir / "exports" / "generator.torchscript.pt").is_file(), out


@pytest.mark.slow
@pytest.mark.parametrize("name,args", [
    ("stylegan2", dict(nz=8, w_dim=8, channel_base=256, channel_max=8, image_size=16, channels=1, mapping_layers=2)),
    ("r3gan", dict(nz=8, width=8, image_size=16, channels=1, num_classes=10)),
])
def test_stylegan2_and_r3gan_export_too(name, args, tmp_path):
    from gankit.core.plugins import registry
    from gankit.runs.export import eager_images, export_generator

    torch.manual_seed(0)
    G = registry("generators").build(name, **args)
    for m in G.modules():
        if hasattr(m, "noise_strength"):  # StyleGAN2's noise inputs start at strength 0: make them count
            m.noise_strength.data.fill_(0.3)
    truncation = 0.7 if name == "stylegan2" else None
    results = {fmt: export_generator(G, fmt, tmp_path / f"g.{fmt}", truncation=truncation)
               for fmt in ("pt2", "torchscript", "onnx")}
    for fmt, result in results.items():
        assert result.max_diff <= 1e-5 and result.sample_diff <= 1e-5, (fmt, result)
        # pt2 keeps StyleGAN2's fused convolutions, exactly gankit sample's images (constant noise);
        # TorchScript and ONNX run them unfused: the same up to float rounding
        assert (result.sample_diff > 0) == (name == "stylegan2" and fmt != "pt2"), (fmt, result)
    z = torch.randn(3, 8)
    labels = torch.tensor([1, 5, 9]) if "num_classes" in args else None
    model = torch.export.load(tmp_path / "g.pt2").module()
    got = model(z, labels) if labels is not None else model(z)
    assert (got - eager_images(G, z, labels, truncation)).abs().max() <= 1e-6
