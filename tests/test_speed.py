"""How the models run: train.precision (fp32, bf16, fp16 with a scaler), channels_last, compile, deterministic."""

from __future__ import annotations

import math
import os

import pytest
import torch

import gankit
from gankit.core.errors import GankitError
from gankit.rundir.metrics import read_metrics
from gankit.losses import BCELoss
from gankit.recipe import validate
from gankit.training import players, speed
from gankit.rundir.checkpoint import atomic_save, find_checkpoint, load_checkpoint
from gankit.training.trainer import Trainer, train
from gankit.training.nonfinite import TrainingStopped
from gankit.training.state import prepare_resume
from gankit_dcgan.models import DCGANDiscriminator, DCGANGenerator
from helpers import gankit as gankit_cli
from helpers import FlakyLoss, states_equal


def final_state(run_dir):
    ck = load_checkpoint(run_dir)
    keys = ("generator", "discriminator", "optim_g", "optim_d", "scaler_g", "scaler_d", "step", "epoch")
    return {k: ck[k] for k in keys}


def train_rows(run_dir) -> list[dict]:
    return [r for r in read_metrics(run_dir) if r["kind"] == "train"]


def events(run_dir, kind: str) -> list[dict]:
    return [r for r in read_metrics(run_dir) if r.get("event") == kind]


class LoudLoss(BCELoss):
    """BCE × 10⁴: under fp16 its first gradients overflow until the scaler has lowered its scale."""

    def d_loss(self, D, real, fake):
        total, stats = super().d_loss(D, real, fake)
        return total * 1e4, stats

    def g_loss(self, D, fake):
        total, stats = super().g_loss(D, fake)
        return total * 1e4, stats


class NondeterministicLoss(BCELoss):
    """BCE that fails as an op without a deterministic implementation does (those ops are CUDA's)."""

    def d_loss(self, D, real, fake):
        if torch.are_deterministic_algorithms_enabled():  # torch's own message (at::Context::alertNotDeterministic)
            raise RuntimeError("gankit_test_op does not have a deterministic implementation, but you set "
                               "'torch.use_deterministic_algorithms(True)'. You can turn off determinism just for "
                               "this operation, or you can use the 'warn_only=True' option, if that's acceptable "
                               "for your application.")
        return super().d_loss(D, real, fake)


@pytest.fixture
def torch_flags():
    """Put back the global switches a deterministic run sets."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
             os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    yield
    torch.use_deterministic_algorithms(saved[0])
    torch.backends.cudnn.benchmark = saved[1]
    if saved[2] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[2]


def hooked_discriminator(monkeypatch, hook):
    """The trainer's D gets ``hook(module, inputs, output)`` on its first convolution."""
    build = players.build_discriminator

    def hooked(recipe):
        D = build(recipe)
        D.main[0].register_forward_hook(hook)
        return D

    monkeypatch.setattr(players, "build_discriminator", hooked)


# -- precision ---------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_each_precision_trains_and_the_run_records_it(tiny, tmp_path, precision):
    tiny["train"]["precision"] = precision
    run_dir = train(validate(tiny))
    assert f"precision: {precision}" in (run_dir / "recipe.yaml").read_text()
    rows = train_rows(run_dir)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(math.isfinite(r[k]) for r in rows for k in ("loss_d", "loss_g", "d_real", "grad_norm_d"))
    ck = load_checkpoint(run_dir)
    assert all(t.dtype == torch.float32 for t in ck["generator"].values() if t.is_floating_point())
    for key in ("scaler_g", "scaler_d"):
        assert (ck[key]["scale"] > 0) if precision == "fp16" else ck[key] is None
    # gankit sample loads it without caring how it was trained
    code, out, err = gankit_cli("sample", run_dir, "--num", "3", "--out", tmp_path / "imgs")
    assert code == 0, err
    assert len(list((tmp_path / "imgs").glob("*.png"))) == 3


def test_bf16_runs_d_convolutions_in_bf16(tiny, monkeypatch):
    dtypes = []
    hooked_discriminator(monkeypatch, lambda m, i, out: dtypes.append((out.dtype, m.weight.dtype)))
    tiny["train"]["precision"] = "bf16"
    train(validate(tiny))
    # 4 steps × D on real, on fake, then G's turn; the weights stay fp32, autocast casts per call
    assert len(dtypes) == 12 and set(dtypes) == {(torch.bfloat16, torch.float32)}


def test_fp16_overflow_is_skipped_by_the_scaler_not_stopped_by_the_guard(tiny):
    gankit.registry("losses").register("loud", LoudLoss)
    tiny["loss"] = {"name": "loud"}
    tiny["train"]["precision"] = "fp16"
    tiny["health"] = {"on_nonfinite": "stop"}
    run_dir = train(validate(tiny))
    ck = load_checkpoint(run_dir)
    assert ck["step"] == 4 and read_metrics(run_dir)[-1]["status"] == "finished"
    assert ck["scaler_d"]["scale"] < 65536 and ck["scaler_g"]["scale"] < 65536  # it overflowed and backed off
    assert not events(run_dir, "skipped_step") and not events(run_dir, "nonfinite")


def test_fp16_resume_is_bit_identical_scaler_included(tiny):
    gankit.registry("losses").register("loud", LoudLoss)  # so the scale changes along the way
    tiny["loss"] = {"name": "loud"}
    tiny["train"].update(precision="fp16", steps=6, sample_every=None, checkpoint_every=None)
    whole = final_state(train(validate(tiny)))
    assert whole["scaler_d"]["scale"] < 65536

    tiny["train"]["steps"] = 3
    half = train(validate(tiny))
    assert load_checkpoint(half)["scaler_d"]["scale"] != whole["scaler_d"]["scale"]  # mid-way: resume must restore it
    recipe, ck, run_dir = prepare_resume(half, ["train.steps=6"])
    Trainer(recipe, resume=ck, run_dir=run_dir, overrides=["train.steps=6"]).run()
    assert states_equal(whole, final_state(half))


@pytest.mark.parametrize("policy", ["stop", "skip"])
def test_a_nonfinite_loss_still_trips_the_guard_under_fp16(tiny, policy):
    gankit.registry("losses").register("flaky", FlakyLoss)
    FlakyLoss.nan_calls = {3}
    tiny["loss"] = {"name": "flaky"}
    tiny["train"].update(precision="fp16", steps=5)
    tiny["health"] = {"on_nonfinite": policy}
    if policy == "stop":
        with pytest.raises(TrainingStopped, match="step 3, discriminator update: loss_d = nan"):
            train(validate(tiny))
        return
    run_dir = train(validate(tiny))  # skipped, and the scaler carries on (its unscale_ was followed by an update)
    assert [e["step"] for e in events(run_dir, "skipped_step")] == [3]
    assert load_checkpoint(run_dir)["step"] == 5 and load_checkpoint(run_dir)["skipped_steps"] == 1


@pytest.mark.parametrize("reg", [{"name": "gp", "weight": 1.0}, {"name": "r1", "gamma": 1.0}])
def test_regularizers_under_fp16_match_fp32(tiny, reg):
    """Penalties run in fp32: at the first update (same weights) fp16's equals fp32's, up to G's fp16 fakes."""
    tiny["regularizers"] = [reg]
    tiny["train"]["steps"] = 2
    first = {}
    for precision in ("fp32", "fp16"):
        tiny["train"]["precision"] = precision
        rows = train_rows(train(validate(tiny)))
        assert all(math.isfinite(r[reg["name"]]) and r[reg["name"]] > 0 for r in rows)
        first[precision] = rows[0][reg["name"]]
    # R1 sees only real images: the same number; GP interpolates towards G's (fp16) fakes: close
    assert first["fp16"] == pytest.approx(first["fp32"], rel=1e-6 if reg["name"] == "r1" else 1e-2)


def test_unsupported_precision_is_a_clear_error(tiny, monkeypatch):
    monkeypatch.setattr(torch.amp, "is_autocast_available", lambda device_type: False)
    tiny["train"]["precision"] = "bf16"
    with pytest.raises(GankitError, match=r"train.precision: bf16 needs autocast.*set train.precision: fp32"):
        train(validate(tiny))


# -- memory layout and compilation -------------------------------------------------------
def test_channels_last_models_and_batches(tiny, tmp_path, monkeypatch):
    layouts = []
    hooked_discriminator(monkeypatch, lambda m, inputs, out: layouts.append(
        inputs[0].is_contiguous(memory_format=torch.channels_last) and not inputs[0].is_contiguous()))
    tiny["data"]["channels"] = 3  # with one channel NCHW and NHWC are the same layout
    tiny["train"]["channels_last"] = True
    trainer = Trainer(validate(tiny))
    run_dir = trainer.run()
    assert len(layouts) == 12 and all(layouts)  # real and fake batches alike
    for module in (trainer.G, trainer.D):
        conv = module.main[0].weight
        assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert set(load_checkpoint(run_dir)["generator"]) == set(DCGANGenerator(nz=8, ngf=8, channels=3,
                                                                            image_size=16).state_dict())
    code, _, err = gankit_cli("sample", run_dir, "--num", "2", "--out", tmp_path / "imgs")
    assert code == 0, err


COMPILED: list = []  # graphs the test backend was given


def _counting_backend(gm, example_inputs):
    COMPILED.append(gm)
    return gm.forward  # run the captured graph as it is: compiling without inductor's cost


@pytest.mark.slow
def test_compile_trains_and_its_checkpoint_keys_are_unprefixed(tiny, tmp_path, monkeypatch):
    # inductor spends ~50 s compiling even these tiny networks on a 2-core CPU: the test swaps in a
    # backend that only captures the graphs (test_compile_without_a_cpp_compiler... reaches inductor).
    from torch._dynamo import list_backends, register_backend

    if "gankit_test_counting" not in list_backends(exclude_tags=()):
        register_backend(_counting_backend, name="gankit_test_counting")
    monkeypatch.setenv(speed.COMPILE_BACKEND_ENV, "gankit_test_counting")
    COMPILED.clear()
    tiny["train"].update(compile=True, channels_last=True, ema={"decay": 0.9})
    trainer = Trainer(validate(tiny))
    run_dir = trainer.run()
    assert COMPILED, "nothing was compiled"
    ck = load_checkpoint(run_dir)
    plain_g = DCGANGenerator(nz=8, ngf=8, channels=1, image_size=16).state_dict()
    plain_d = DCGANDiscriminator(ndf=8, channels=1, image_size=16).state_dict()
    assert set(ck["generator"]) == set(plain_g) and set(ck["discriminator"]) == set(plain_d)
    assert set(ck["ema"]["generator"]) == set(plain_g)  # the EMA copies the uncompiled G
    assert (run_dir / "samples" / "step_0000004.png").is_file()
    recipe, ck, run_dir = prepare_resume(run_dir, ["train.steps=5"])
    Trainer(recipe, resume=ck, run_dir=run_dir).run()
    assert load_checkpoint(run_dir)["step"] == 5
    code, _, err = gankit_cli("sample", run_dir, "--num", "2", "--out", tmp_path / "imgs")
    assert code == 0, err


@pytest.mark.slow
def test_compile_without_a_cpp_compiler_is_a_clear_error(tiny, write_recipe, tmp_path, monkeypatch):
    import torch._inductor.config

    monkeypatch.setattr(torch._inductor.config.cpp, "cxx", (None, str(tmp_path / "no-such-c++")))  # as $CXX would
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))  # no compiled graph to reuse
    tiny["train"]["compile"] = True
    code, _, err = gankit_cli("run", write_recipe(tiny), timeout=120)
    assert code == 2, err
    assert "train.compile: torch.compile failed" in err and "C++ compiler" in err, err
    assert "set train.compile: false" in err and "Traceback" not in err


# -- determinism ---------------------------------------------------------------------------
def test_deterministic_sets_torchs_switch_both_ways(tiny, torch_flags):
    tiny["train"]["deterministic"] = True
    run_dir = train(validate(tiny))
    assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
    assert os.environ.get("CUBLAS_WORKSPACE_CONFIG")  # ":4096:8" unless the user set it
    assert "deterministic: true" in (run_dir / "recipe.yaml").read_text()
    tiny["train"]["deterministic"] = False
    train(validate(tiny))
    assert not torch.are_deterministic_algorithms_enabled()  # the recipe decides, not an earlier run


def test_an_op_without_a_deterministic_implementation_is_a_clear_error(tiny, torch_flags):
    gankit.registry("losses").register("nondeterministic", NondeterministicLoss)
    tiny["loss"] = {"name": "nondeterministic"}
    tiny["train"]["deterministic"] = True
    with pytest.raises(GankitError, match=r"train.deterministic: gankit_test_op has no deterministic implementation"
                                          r".*set train.deterministic: false"):
        train(validate(tiny))
    tiny["train"]["deterministic"] = False
    train(validate(tiny))  # without the switch it trains


# -- resume --------------------------------------------------------------------------------
def test_resume_from_before_these_keys_existed_and_switching_them(tiny):
    run_dir = train(validate(tiny))
    path = find_checkpoint(run_dir)
    ck = load_checkpoint(path)
    # As a gankit before these keys wrote it; d_steps stands for any later key that may not change on resume.
    for key in ("precision", "channels_last", "compile", "deterministic", "d_steps"):
        del ck["recipe"]["train"][key]
    del ck["scaler_g"], ck["scaler_d"]
    atomic_save(ck, path)
    recipe, ck, run_dir = prepare_resume(run_dir, ["train.steps=6", "train.precision=fp16"])
    Trainer(recipe, resume=ck, run_dir=run_dir, overrides=["train.steps=6", "train.precision=fp16"]).run()
    ck = load_checkpoint(run_dir)
    assert ck["step"] == 6 and ck["scaler_g"]["scale"] > 0
    recipe, ck, run_dir = prepare_resume(run_dir, ["train.steps=7", "train.precision=fp32"])  # and back
    Trainer(recipe, resume=ck, run_dir=run_dir).run()
    assert load_checkpoint(run_dir)["scaler_g"] is None


def test_optimizers_are_fused_unless_the_recipe_says_otherwise():
    from gankit.recipe.optimizers import build_optimizer
    from gankit.recipe.schema import OptimizerSpec

    def params():
        torch.manual_seed(0)
        p = torch.nn.Parameter(torch.randn(50))
        p.grad = torch.randn(50)
        return [p]

    fused, plain = params(), params()
    opt = build_optimizer(OptimizerSpec(name="adam", lr=0.1, betas=[0.5, 0.999]), fused)
    ref = build_optimizer(OptimizerSpec(name="adam", lr=0.1, betas=[0.5, 0.999], foreach=True), plain)
    assert opt.defaults["fused"] is True and not ref.defaults["fused"]
    for _ in range(3):
        opt.step()
        ref.step()
    assert torch.allclose(fused[0], plain[0], rtol=1e-6, atol=1e-7)  # the same update rule
    assert not build_optimizer(OptimizerSpec(name="adam", fused=False), params()).defaults["fused"]
    assert not build_optimizer(OptimizerSpec(name="rmsprop"), params()).defaults.get("fused")  # has none
