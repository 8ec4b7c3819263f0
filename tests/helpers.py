"""Helpers the tests import: the tiny recipe, running the CLI, finding run directories."""

from __future__ import annotations

import contextlib
import faulthandler
import io
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

from gankit.losses import BCELoss

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

TINY = {
    "name": "tiny",
    "seed": 1,
    "out_dir": "runs",  # replaced by a tmp path in the fixture
    "device": "cpu",
    "data": {"name": "digits", "image_size": 16, "channels": 1, "batch_size": 16, "workers": 0},
    "generator": {"name": "dcgan", "nz": 8, "ngf": 8},
    "discriminator": {"name": "dcgan", "ndf": 8},
    "loss": {"name": "bce"},
    "train": {"steps": 4, "sample_every": 2, "num_samples": 16, "checkpoint_every": 2, "log_every": 1},
    "log": {"progress": "none"},
}


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300):
    """``gankit ARGS`` in a subprocess (what a user types); returns the CompletedProcess."""
    full_env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gankit", *args], cwd=cwd or REPO, env=full_env,
        capture_output=True, text=True, timeout=timeout,
    )


def states_equal(a, b) -> bool:
    """Bit-identical nested state (tensors compared with torch.equal)."""
    import torch

    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(states_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(states_equal(x, y) for x, y in zip(a, b))
    return a == b


def only_run_dir(out_dir: Path) -> Path:
    runs = [p for p in Path(out_dir).glob("*/*") if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@contextlib.contextmanager
def time_limit(seconds: int):
    """A hang fails the example instead of the suite.

    SIGALRM interrupts Python code; a hang inside C (repr of an expanded alias
    bomb, which also eats memory fast) cannot be interrupted, so faulthandler
    ends the process after twice the time, with every thread's traceback.
    """
    def expire(signum, frame):
        raise TimeoutError(f"gave no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    faulthandler.dump_traceback_later(2 * seconds, exit=True, file=sys.__stderr__)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def gankit(*argv: str, timeout: int = 30) -> tuple[int, str, str]:
    """``gankit ARGV`` in this process: exit code, stdout, stderr.

    Seconds faster than :func:`run_cli`; an exception that escapes is what a
    user would see as a traceback.
    """
    from gankit import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), time_limit(timeout):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()



class FlakyLoss(BCELoss):
    """BCE whose D loss is NaN on chosen calls (1-based), for the non-finite tests."""

    nan_calls: set[int] = set()

    def __init__(self):
        super().__init__()
        self.calls = 0

    def d_loss(self, D, real, fake):
        self.calls += 1
        total, stats = super().d_loss(D, real, fake)
        return (total * math.nan, stats) if self.calls in self.nan_calls else (total, stats)
