"""Which loggers a run gets, from its recipe's ``log`` section.

The local record always; a wandb run unless ``log.wandb.mode`` (or the
``WANDB_MODE`` environment variable, which wins) says ``disabled``. wandb
missing or broken costs one notice line, never the run.
"""

from __future__ import annotations

import os
from pathlib import Path

from gankit.core.processes import is_main_process
from gankit.loggers.base import Logger, LoggerGroup
from gankit.loggers.local import LocalLogger

MODES = ("auto", "online", "offline", "disabled")
# WANDB_MODE spellings wandb itself accepts, in gankit's terms.
ENV_ALIASES = {"dryrun": "offline", "run": "online"}


def import_wandb():
    """The wandb module, or None with a one-line notice when it is absent or broken."""
    try:
        import wandb
    except Exception as exc:  # not installed, or an install that fails on import
        from gankit.loggers.wandb_logger import first_line, notice

        notice(f"not available ({type(exc).__name__}: {first_line(exc)}); logging to the local record only "
               "(set log.wandb.mode=disabled to silence this)")
        return None
    return wandb


def requested_mode(setting: str) -> str:
    """``log.wandb.mode``, unless WANDB_MODE says otherwise."""
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    env = ENV_ALIASES.get(env, env)
    return env if env in MODES else setting


def api_key_configured(wandb) -> bool:
    """Whether wandb has credentials (environment, ~/.netrc or its settings), without asking the network."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    try:  # wandb internals: any surprise just means "not logged in"
        from wandb.sdk import wandb_setup
        from wandb.sdk.lib.wbauth import read_netrc_auth

        settings = wandb_setup.singleton().settings
        return bool(settings.api_key or read_netrc_auth(host=settings.base_url))
    except Exception:
        return False


def make_wandb_logger(recipe, run_dir: Path, *, job_type: str, resumed: bool, backfill: bool = False) -> Logger | None:
    """The wandb logger the recipe asks for, or None (disabled, absent or failing to start)."""
    cfg = recipe.log.wandb
    mode = requested_mode(cfg.mode)
    if mode == "disabled":
        return None
    wandb = import_wandb()
    if wandb is None:
        return None
    if mode == "auto":
        mode = "online" if api_key_configured(wandb) else "offline"
    from gankit.loggers.wandb_logger import first_line, notice, start_wandb

    try:  # start_wandb guards wandb itself; this also covers the run directory (the id file)
        return start_wandb(wandb, cfg, run_dir, mode=mode, name=Path(run_dir).name, group=cfg.group or recipe.name,
                           job_type=job_type, resumed=resumed, backfill=backfill)
    except Exception as exc:
        notice(f"unavailable ({type(exc).__name__}: {first_line(exc)}); the local record continues")
        return None


def make_loggers(recipe, run_dir: Path, *, job_type: str = "train", resumed: bool = False,
                 backfill: bool = False) -> LoggerGroup:
    """The local record always; more loggers as the recipe's ``log`` section asks.

    ``backfill``: rows of earlier steps added to a finished run (``gankit eval --log``).
    """
    if not is_main_process():
        return LoggerGroup([])
    loggers: list[Logger] = [LocalLogger(run_dir)]
    wandb_logger = make_wandb_logger(recipe, run_dir, job_type=job_type, resumed=resumed, backfill=backfill)
    if wandb_logger is not None:
        loggers.append(wandb_logger)
    return LoggerGroup(loggers)
