"""Training end to end: the run directory, exact resume, signals, sampling, bad data."""

import json
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from gankit.core.errors import DataError, RecipeError
from gankit.recipe import validate
from gankit.rundir.checkpoint import load_checkpoint
from gankit.training.trainer import train
from gankit.training.state import prepare_resume
from gankit.training.trainer import Trainer
from helpers import REPO, SHARED_DATA, only_run_dir, run_cli, states_equal


def final_state(run_dir):
    ck = load_checkpoint(run_dir)
    return {k: ck[k] for k in ("generator", "discriminator", "optim_g", "optim_d", "step", "epoch", "batch_in_epoch")}


@pytest.mark.slow
def test_quickstart_recipe_trains_through_the_cli(tmp_path):
    out = tmp_path / "runs"
    result = run_cli("run", "recipes/quickstart.yaml", "train.steps=3", "train.log_every=1",
                     "log.progress=lines", f"out_dir={out}", "log.wandb.mode=disabled")
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(out)
    assert f"run finished: {run_dir}" in result.stderr
    assert "[3/3]" in result.stderr and "D(G(z))" in result.stderr
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3]
    for key in ("loss_d", "loss_g", "d_real", "d_fake", "img_per_s", "grad_norm_g", "grad_norm_d", "lr_g"):
        assert key in train_rows[0]
    assert rows[-1] == {**rows[-1], "kind": "end", "status": "finished"}
    assert (run_dir / "samples" / "step_0000003.png").is_file()
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    text = (run_dir / "recipe.yaml").read_text()
    assert "overrides:" in text and "train.steps=3" in text and "dcgan: 0.1.0" in text


def test_run_directory_and_checkpoint_contents(tiny):
    run_dir = train(validate(tiny))
    ck = load_checkpoint(run_dir)
    assert ck["step"] == 4 and ck["recipe"]["name"] == "tiny"
    assert set(ck["rng"]) >= {"torch", "numpy", "python", "cuda", "loader"}
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["real.png", "step_0000002.png",
                                                                       "step_0000004.png"]
    with Image.open(run_dir / "samples" / "step_0000004.png") as grid:  # 16 images of 16x16, padding 2,
        assert grid.size == ((4 * 18 + 2) * 4,) * 2  # enlarged to tiles of 64 px
    assert not list((run_dir / "checkpoints").glob(".*tmp*"))  # atomic writes leave no temporaries


def test_same_seed_same_run(tiny):
    a = final_state(train(validate(tiny)))
    b = final_state(train(validate(tiny)))
    assert states_equal(a, b)


def test_sampling_and_checkpointing_never_change_the_trajectory(tiny):
    tiny["train"].update(sample_every=1, checkpoint_every=1)
    often = final_state(train(validate(tiny)))
    tiny["train"].update(sample_every=None, checkpoint_every=None)
    never = final_state(train(validate(tiny)))
    assert states_equal(often, never)


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_is_bit_identical(tiny, workers):
    # 1,797 digits in batches of 512: 4 batches an epoch, so 7 steps cross an epoch
    # boundary and the resume at step 3 lands mid-epoch.
    tiny["data"].update(batch_size=512, workers=workers)
    tiny["train"].update(steps=7, sample_every=None, checkpoint_every=None)
    whole = final_state(train(validate(tiny)))

    tiny["train"]["steps"] = 3
    half = train(validate(tiny))
    recipe, ck, run_dir = prepare_resume(half, ["train.steps=7"])
    assert run_dir == half and ck["step"] == 3
    Trainer(recipe, resume=ck, run_dir=run_dir, overrides=["train.steps=7"]).run()
    resumed = final_state(half)
    assert resumed["step"] == 7 and resumed["epoch"] == 1
    assert states_equal(whole, resumed)
    events = [json.loads(line) for line in (half / "metrics.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "resumed" for e in events)


def test_resume_refuses_changes_to_model_or_data(tiny):
    run_dir = train(validate(tiny))
    with pytest.raises(RecipeError) as err:
        prepare_resume(run_dir, ["generator.ngf=16", "data.batch_size=8", "train.steps=10"])
    text = str(err.value)
    assert "generator.ngf: cannot change when resuming (was 8, now 16)" in text
    assert "data.batch_size: cannot change when resuming" in text
    assert "train.steps" not in text.split("allowed on resume")[0]


@pytest.mark.slow
def test_resume_through_the_cli(tiny, write_recipe):
    first = run_cli("run", str(write_recipe(tiny)))
    assert first.returncode == 0, first.stderr
    run_dir = only_run_dir(tiny["out_dir"])
    again = run_cli("run", "--resume", str(run_dir), "train.steps=6")
    assert again.returncode == 0, again.stderr
    assert load_checkpoint(run_dir)["step"] == 6
    refused = run_cli("run", "--resume", str(run_dir), "seed=5")
    assert refused.returncode == 2 and "seed: cannot change when resuming" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_a_checkpoint_and_the_run_resumes(tiny, write_recipe, sig, code):
    tiny["train"].update(steps=100_000, checkpoint_every=None, sample_every=None, log_every=1)
    path = write_recipe(tiny)
    proc = subprocess.Popen([sys.executable, "-m", "gankit", "run", str(path)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until training is under way
        metrics = list((tiny_out := __import__("pathlib").Path(tiny["out_dir"])).glob("*/*/metrics.jsonl"))
        if metrics and metrics[0].read_text().count('"train"') >= 3:
            break
        time.sleep(0.2)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert "checkpoint saved; resume with: gankit run --resume" in stderr
    run_dir = only_run_dir(tiny_out)
    step = load_checkpoint(run_dir)["step"]
    assert 3 <= step < 100_000
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["kind"] == "end" and rows[-1]["status"] == "interrupted"
    resumed = run_cli("run", "--resume", str(run_dir), f"train.steps={step + 2}")
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(run_dir)["step"] == step + 2


@pytest.mark.slow
def test_sample_command(tiny, tmp_path):
    run_dir = train(validate(tiny))
    result = run_cli("sample", str(run_dir), "--num", "5", "--out", str(tmp_path / "imgs"))
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "imgs").glob("*.png"))
    assert len(files) == 5
    with Image.open(files[0]) as img:
        assert img.size == (16, 16)
    grid = run_cli("sample", str(run_dir / "checkpoints" / "last.pt"), "--num", "9", "--grid",
                   "--out", str(tmp_path / "grid"))
    assert grid.returncode == 0 and (tmp_path / "grid" / "sample_seed0.png").is_file()  # named by its seed


def make_folder(root, n=20, size=20):
    root.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (size, size), (i * 10, 100, 200 - i * 5)).save(root / f"{i:03d}.png")
    return root


def test_bad_image_stops_naming_the_file_or_is_skipped_and_counted(tiny, tmp_path):
    folder = make_folder(tmp_path / "imgs" / "all")
    (folder / "zzz_truncated.png").write_bytes((folder / "000.png").read_bytes()[:40])
    tiny["data"] = {"name": "imagefolder", "root": str(tmp_path / "imgs"), "image_size": 16,
                    "channels": 3, "batch_size": 7, "workers": 0}
    tiny["train"]["steps"] = 3
    with pytest.raises(DataError, match="zzz_truncated.png"):
        train(validate(tiny))
    tiny["data"]["on_bad_image"] = "skip"
    run_dir = only_run_dir(tiny["out_dir"]) if False else train(validate(tiny))
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    skipped = [r for r in rows if r.get("event") == "skipped_images"]
    assert skipped and skipped[-1]["total"] == 1 and "zzz_truncated.png" in skipped[0]["files"][0]


@pytest.mark.skipif(not (SHARED_DATA / "celeba_sample").is_dir(), reason="../shared/data/celeba_sample is absent")
def test_tutorial_recipe_trains_on_the_celeba_sample(tmp_path):
    # The tutorial's networks at 64x64; a smaller batch keeps the CPU test short.
    result = run_cli("run", "recipes/dcgan_celeba.yaml", f"data.root={SHARED_DATA / 'celeba_sample'}",
                     "train.steps=2", "data.batch_size=16", f"out_dir={tmp_path}", "log.progress=none",
                     "log.wandb.mode=disabled", "eval.num_fake=64", "eval.num_real=64")  # SWD stands in offline
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path)
    assert load_checkpoint(run_dir)["step"] == 2
    with Image.open(run_dir / "samples" / "step_0000002.png") as grid:
        assert grid.size == (8 * 66 + 2, 8 * 66 + 2)
