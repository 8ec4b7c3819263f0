"""Ctrl-C and SIGTERM: the first asks the run to stop after its step, a second stops it at once.

A second signal raises KeyboardInterrupt wherever the run is; every file the
run writes (checkpoints, grids, the resolved recipe) goes to a temporary and
is renamed into place, so stopping mid-write leaves the previous file whole.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

from gankit.training.distributed import resume_command


class RunInterrupted(Exception):
    """The run was stopped by SIGINT/SIGTERM; a checkpoint was saved (unless stopped twice)."""

    def __init__(self, signum: int, run_dir: Path, saved: bool):
        self.exit_code = 128 + signum  # 130 for Ctrl-C, 143 for SIGTERM
        self.run_dir = run_dir
        how = "checkpoint saved" if saved else "stopped at once, last checkpoint kept"
        super().__init__(f"interrupted ({signal.Signals(signum).name}): {how}; resume with: {resume_command(run_dir)}")


class StopRequest:
    """Turns the first SIGINT/SIGTERM into a request to stop after the current step."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt  # a second signal: stop at once
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
