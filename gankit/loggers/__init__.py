"""Loggers: where a run's numbers and images go.

The trainer and evaluator talk only to :class:`Logger` (through
:class:`LoggerGroup`); they never import wandb.
"""

from gankit.loggers.base import Logger, LoggerGroup
from gankit.loggers.local import LocalLogger

__all__ = ["Logger", "LoggerGroup", "LocalLogger"]
