"""gankit without wandb, with wandb disabled, and with wandb failing: training always goes on."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from gankit import cli
from gankit.loggers import factory
from gankit.loggers.local import LocalLogger
from gankit.rundir.metrics import read_metrics
from gankit.loggers.wandb_logger import WandbLogger
from gankit.recipe.schema import Recipe


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_IDENTITY_TOKEN_FILE", "RANK"):
        monkeypatch.delenv(var, raising=False)
    for var, sub in (("WANDB_CONFIG_DIR", "config"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data")):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / sub))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def make_recipe(**wandb) -> Recipe:
    return Recipe.model_validate({"name": "syn", "generator": {"name": "dcgan"}, "discriminator": {"name": "dcgan"},
                                  "log": {"wandb": wandb}})


def train_tiny(tiny, write_recipe, mode: str = "offline") -> Path:
    tiny["log"]["wandb"] = {"mode": mode}
    assert cli.main(["run", str(write_recipe(tiny))]) == 0
    (run_dir,) = Path(tiny["out_dir"]).glob("*/*")
    return run_dir


def assert_complete_local_record(run_dir: Path) -> None:
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3, 4]
    assert rows[-1]["kind"] == "end" and rows[-1]["status"] == "finished"
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["real.png", "step_0000002.png",
                                                                       "step_0000004.png"]


# -- real tiny runs -------------------------------------------------------------------------------
def test_wandb_mode_disabled_from_the_environment(tiny, write_recipe, clean_env, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")  # wins over the recipe's offline
    run_dir = train_tiny(tiny, write_recipe, mode="offline")
    assert_complete_local_record(run_dir)
    assert not (run_dir / "wandb").exists() and not (run_dir / "wandb_run_id").exists()


def test_wandb_not_importable(tiny, write_recipe, clean_env, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` now raises ImportError
    run_dir = train_tiny(tiny, write_recipe, mode="auto")
    assert_complete_local_record(run_dir)
    assert not (run_dir / "wandb").exists()
    notices = [line for line in capsys.readouterr().err.splitlines() if line.startswith("wandb:")]
    assert len(notices) == 1 and "not available" in notices[0]


# -- mode resolution ---------------------------------------------------------------------------------
@pytest.mark.parametrize("env, setting, expected", [
    (None, "offline", "offline"),
    ("disabled", "online", "disabled"),
    ("offline", "auto", "offline"),
    ("dryrun", "online", "offline"),
    ("run", "offline", "online"),
    ("nonsense", "offline", "offline"),
])
def test_wandb_mode_env_wins(monkeypatch, env, setting, expected):
    if env is None:
        monkeypatch.delenv("WANDB_MODE", raising=False)
    else:
        monkeypatch.setenv("WANDB_MODE", env)
    assert factory.requested_mode(setting) == expected


def test_auto_is_online_only_with_an_api_key(monkeypatch, clean_env):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("HOME", "/nonexistent")  # no ~/.netrc
    monkeypatch.setenv("NETRC", "/nonexistent/.netrc")
    assert factory.api_key_configured(wandb) is False
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert factory.api_key_configured(wandb) is True


def test_only_rank_zero_logs(tmp_path, clean_env, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    group = factory.make_loggers(make_recipe(mode="offline"), tmp_path)
    assert group.loggers == []
    group.log_scalars(1, {"loss_d": 1.0})
    group.finish("finished")
    assert not (tmp_path / "metrics.jsonl").exists()


# -- wandb failing ----------------------------------------------------------------------------------
class FakeRun:
    """Stands in for a wandb run; ``fail`` names the method that raises."""

    def __init__(self, fail: str = ""):
        self.fail, self.logged, self.finished = fail, [], []
        self.summary, self.id, self.dir, self.url = {}, "fake1234", "/tmp/x/files", None
        self.config = types.SimpleNamespace(update=self._update)

    def _update(self, *a, **k):
        if self.fail == "config":
            raise RuntimeError("service gone")

    def log(self, data, step=None):
        if self.fail == "log":
            raise ConnectionError("wandb-core died")
        self.logged.append((step, data))

    def finish(self, exit_code=None):
        self.finished.append(exit_code)


def fake_wandb(monkeypatch, *, init_fails: set[str] = frozenset(), run: FakeRun | None = None):
    """Install a fake ``wandb`` module whose init fails in the given modes."""
    calls = []

    def init(mode=None, **kwargs):
        calls.append(mode)
        if mode in init_fails:
            raise TimeoutError(f"no answer in {mode} mode\nsecond line")
        return run

    module = types.SimpleNamespace(init=init, Settings=lambda **k: k, teardown=lambda: None,
                                   Image=lambda path, caption=None: ("image", path))
    monkeypatch.setitem(sys.modules, "wandb", module)
    return calls


def test_wandb_that_cannot_start_leaves_the_local_record(tmp_path, clean_env, monkeypatch, capsys):
    calls = fake_wandb(monkeypatch, init_fails={"online", "offline"})
    group = factory.make_loggers(make_recipe(mode="online", init_timeout=1), tmp_path)
    assert calls == ["online", "offline"]
    assert [type(lg) for lg in group.loggers] == [LocalLogger]
    err = capsys.readouterr().err.splitlines()
    assert any("falling back to offline" in line for line in err)
    assert any("unavailable" in line for line in err)
    assert not any(line == "second line" for line in err)  # notices stay one line each


def test_online_failure_falls_back_to_offline(tmp_path, clean_env, monkeypatch, capsys):
    calls = fake_wandb(monkeypatch, init_fails={"online"}, run=FakeRun())
    group = factory.make_loggers(make_recipe(mode="online"), tmp_path)
    assert calls == ["online", "offline"]
    assert isinstance(group.loggers[1], WandbLogger)
    assert "wandb sync /tmp/x" in capsys.readouterr().err


def test_a_failing_wandb_call_never_stops_the_run(tmp_path, clean_env, monkeypatch, capsys):
    run = FakeRun(fail="log")
    fake_wandb(monkeypatch, run=run)
    group = factory.make_loggers(make_recipe(mode="offline"), tmp_path)
    for step in (1, 2, 3):
        group.log_scalars(step, {"loss_d": 1.0})
    group.log_images(3, {"samples": tmp_path / "grid.png"})
    group.finish("failed")
    err = capsys.readouterr().err
    assert err.count("wandb logging is off") == 1  # one notice, then wandb is skipped
    assert run.finished == [1]  # still finished, with a failing exit code
    assert [r["step"] for r in read_metrics(tmp_path) if r["kind"] == "train"] == [1, 2, 3]


@pytest.mark.parametrize("status, code", [("finished", 0), ("failed", 1), ("interrupted", 255)])
def test_exit_codes(tmp_path, clean_env, monkeypatch, status, code):
    run = FakeRun()
    fake_wandb(monkeypatch, run=run)
    group = factory.make_loggers(make_recipe(mode="offline"), tmp_path)
    group.finish(status)
    assert run.finished == [code] and run.summary["gankit_status"] == status


@pytest.mark.slow
def test_real_wandb_online_without_network_falls_back(tmp_path, clean_env, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens: refused at once
    group = factory.make_loggers(make_recipe(mode="auto", init_timeout=2), tmp_path)
    group.log_scalars(1, {"loss_d": 1.0})
    group.finish("finished")
    assert isinstance(group.loggers[1], WandbLogger)
    assert len(list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))) == 1


def test_online_start_says_where_the_run_is(tmp_path, clean_env, monkeypatch, capsys):
    run = FakeRun()
    run.url = "https://wandb.example/gankit/runs/fake1234"
    calls = fake_wandb(monkeypatch, run=run)
    factory.make_loggers(make_recipe(mode="online"), tmp_path)
    assert calls == ["online"]
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("wandb:")]
    assert len(err) == 1 and run.url in err[0]
    assert (tmp_path / "wandb_run_id").read_text().strip()
