"""Several processes through torchrun (gloo on the CPU): ranks agree, rank 0 alone writes, resume is exact."""

import json
import os
import subprocess
import sys

import pytest
import torch

from gankit.core.errors import GankitError
from gankit.rundir.checkpoint import load_checkpoint
from gankit.training.distributed import join_world
from gankit.data.sampler import ResumableSampler
from helpers import REPO, only_run_dir, states_equal

pytestmark = pytest.mark.slow  # the slow tier: torchrun processes

WORKER = REPO / "tests" / "ddp_worker.py"


def torchrun(*args: str, nproc: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=NPROC ARGS`` (a free port on this machine)."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={nproc}", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def rank_states(prefix, nproc: int = 2) -> list[dict]:
    return [torch.load(f"{prefix}.rank{r}.pt", weights_only=True) for r in range(nproc)]


def parameters(state: dict) -> dict:
    """G's and D's learned weights and both optimizers' states (BatchNorm's running statistics apart:
    each rank keeps its own batch's until DDP hands rank 0's to all at the next forward pass)."""
    learned = {}
    for net in ("generator", "discriminator"):
        learned[net] = {k: v for k, v in state[net].items() if "running_" not in k and "num_batches" not in k}
    return {**learned, "optim_g": state["optim_g"], "optim_d": state["optim_d"]}


@pytest.fixture
def ddp_recipe(tiny, write_recipe):
    """The tiny recipe with every feature the step has (D steps, a penalty, augmentation, EMA), crossing an epoch."""
    # 1797 digits over 2 ranks: 899 per rank, 4 batches of 256 per epoch (data.batch_size is the step's
    # whole batch: 512 is 256 a rank); 3 steps of 2 D updates cross it.
    tiny["data"]["batch_size"] = 512
    tiny["train"].update(steps=3, d_steps=2, ema={"decay": 0.9}, sample_every=1, checkpoint_every=1, log_every=1)
    tiny["regularizers"] = [{"name": "r1", "gamma": 1.0}]
    tiny["augment"] = {"name": "diffaugment", "policy": "translation"}
    return tiny, write_recipe(tiny)


def test_sampler_shards_cover_each_epoch_once_per_rank():
    shards = [ResumableSampler(10, seed=3, rank=r, world=3) for r in range(3)]
    orders = [s.order(5) for s in shards]
    assert all(len(o) == 4 for o in orders)  # 10 items padded to 12: every rank gets 4
    assert sorted(set(i for o in orders for i in o)) == list(range(10))
    whole = ResumableSampler(10, seed=3).order(5)
    assert [o[k] for k in range(4) for o in orders][:10] == whole  # rank r takes every 3rd index from r
    shards[1].set_position(5, 2)
    assert list(shards[1]) == orders[1][2:] and len(shards[1]) == 2


def test_ranks_hold_identical_weights_and_rank_zero_alone_writes(ddp_recipe, tmp_path):
    recipe, path = ddp_recipe
    result = torchrun(str(WORKER), str(path), str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = rank_states(tmp_path / "out")
    assert rank0["step"] == rank1["step"] == 3
    assert states_equal(parameters(rank0), parameters(rank1))

    run_dir = only_run_dir(recipe["out_dir"])  # one run directory, named by rank 0 for both
    assert rank0["run_dir"] == rank1["run_dir"] == str(run_dir)
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "losses.png", "metrics.jsonl", "progress.gif",
                                                         "real_vs_fake.png", "recipe.yaml", "samples"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3]  # one row per step, not one per rank
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["real.png"] + [f"step_000000{s}.png"
                                                                                    for s in (1, 2, 3)]
    assert "world_size: 2" in (run_dir / "recipe.yaml").read_text()
    ck = load_checkpoint(run_dir)
    assert ck["world_size"] == 2 and len(ck["rng_ranks"]) == 2
    assert ck["epoch"] == 1  # the third step's batches came from the second epoch
    assert states_equal(ck["generator"], rank0["generator"])  # rank 0's full state, buffers included


def test_resumed_ddp_run_matches_an_uninterrupted_one(ddp_recipe, tmp_path):
    recipe, path = ddp_recipe
    recipe["train"].update(sample_every=None)
    whole = torchrun(str(WORKER), str(path), str(tmp_path / "whole"), "out_dir=" + str(tmp_path / "a"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    half = torchrun(str(WORKER), str(path), str(tmp_path / "half"), "out_dir=" + str(tmp_path / "b"),
                    "train.steps=1")
    assert half.returncode == 0, half.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "b")
    resumed = torchrun(str(WORKER), "-", str(tmp_path / "resumed"), "--resume", str(run_dir), "train.steps=3")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for a, b in zip(rank_states(tmp_path / "whole"), rank_states(tmp_path / "resumed")):
        assert b["step"] == 3
        assert a["ddp_wrappers_left"] == b["ddp_wrappers_left"] == 0  # the process group went with the run
        assert states_equal(parameters(a), parameters(b))
    # Rank 0's whole state (BatchNorm statistics too) is what both checkpoints hold.
    assert states_equal(load_checkpoint(only_run_dir(tmp_path / "a"))["generator"],
                        load_checkpoint(run_dir)["generator"])


def test_gankit_run_under_torchrun_and_a_resume_with_another_world_size(tiny, write_recipe, tmp_path):
    tiny["train"].update(steps=2, log_every=1)
    result = torchrun("-m", "gankit", "run", str(write_recipe(tiny)))
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tiny["out_dir"])
    assert result.stderr.count("run finished") == 1  # said once, by rank 0
    # One process cannot continue a two-process run exactly: said, exit 2.
    from helpers import run_cli

    alone = run_cli("run", "--resume", str(run_dir), "train.steps=3")
    assert alone.returncode == 2
    assert "trained by 2 process(es)" in alone.stderr and "--nproc_per_node=2" in alone.stderr
    assert "Traceback" not in alone.stderr


def test_one_process_world_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    world, device = join_world("auto")
    assert (world.rank, world.size, world.distributed, device) == (0, 1, False, None)
    assert world.any(True) and not world.any(False) and world.gather(5) == [5] and world.broadcast("x") == "x"


def test_torchrun_with_a_pinned_device_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(GankitError, match="cuda:LOCAL_RANK"):
        join_world("cuda:1")


def test_resume_hints_name_the_launcher(monkeypatch):
    from gankit.training.distributed import resume_command

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert resume_command("runs/a/1") == "gankit run --resume runs/a/1"
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert resume_command("runs/a/1") == "torchrun --nnodes=2 --nproc_per_node=4 -m gankit run --resume runs/a/1"
