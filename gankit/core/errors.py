"""User-facing errors.

Every error a user can cause (a recipe typo, a missing data folder, a broken
plugin) is a :class:`GankitError`. The CLI prints its message and exits with
code 2, without a traceback; anything else is a bug in gankit and keeps its
traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GankitError(Exception):
    """A mistake the user can fix; the message says what and how."""

    exit_code = 2


class RecipeError(GankitError):
    """A recipe with one or more problems, all reported together."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{source} has {n} problem{'s' if n != 1 else ''}"
        super().__init__(head + "\n" + "\n".join("  " + p for p in self.problems))


class RegistryError(GankitError):
    """An unknown or duplicate component name."""


class PluginError(GankitError):
    """A plugin that failed to import or to register."""


class DataError(GankitError):
    """A dataset that cannot be read: missing folder, wrong layout, bad image."""


class CheckpointError(GankitError):
    """A checkpoint that cannot be loaded or does not fit the recipe."""


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The closest matches of ``word`` among ``choices`` (best first); near-ties only."""
    matches = difflib.get_close_matches(str(word), list(choices), n=n, cutoff=0.6)

    def score(m: str) -> float:
        return difflib.SequenceMatcher(None, str(word), m).ratio()

    # 'stpes' -> 'steps', not also 'd_steps': offer a second match only when it is nearly as close.
    return [m for m in matches if score(m) >= score(matches[0]) - 0.05] if matches else []


def suggestion(word: str, choices: Iterable[str], prefix: str = "") -> str:
    """``"; did you mean 'prefix.x'?"`` or an empty string when nothing is close."""
    matches = did_you_mean(word, choices)
    if not matches:
        return ""
    return "; did you mean " + " or ".join(f"'{prefix}{m}'" for m in matches) + "?"
