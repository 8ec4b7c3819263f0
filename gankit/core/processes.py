"""Which process this is among torchrun's: the one place gankit reads RANK and its siblings."""

from __future__ import annotations

import os

from gankit.core.errors import GankitError


def env_int(name: str, default: int) -> int:
    """An integer torchrun sets (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE), or ``default``."""
    value = os.environ.get(name)
    try:
        return int(value) if value is not None else default
    except ValueError:
        raise GankitError(f"environment variable {name}={value!r} is not an integer (torchrun sets it)") from None


def process_rank() -> int:
    """This process's rank under torchrun (0 without it)."""
    return env_int("RANK", 0)


def is_main_process() -> bool:
    """Rank 0, the one that writes, logs and speaks for all (True without torchrun)."""
    return process_rank() == 0
