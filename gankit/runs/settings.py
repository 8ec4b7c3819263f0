"""The recipe settings runs differ in: which ones, ranked by what they explain, and how runs are named by them.

    differing_keys(runs)     # every recipe key whose value is not the same in all runs
    ranked_settings(runs)    # those keys, the ones that tell the most pairs of runs apart first
    legend_labels(runs)      # "ab12 loss.name=hinge": a run's short id and the setting that tells it apart

Read from the runs' resolved recipes (``recipe.yaml``); provenance and
logging keys (:data:`IGNORED_KEYS`) never explain a difference.
"""

from __future__ import annotations

import collections
import json
from typing import Any

from gankit.rundir.record import RunRecord

# Recipe keys (and sections) that never explain a difference between runs' results.
IGNORED_KEYS = ("gankit", "out_dir", "sweep", "log")
MAX_CELL = 18  # characters of a setting's value in a table or legend (the report's config diff shows it whole)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"g": {"lr": 1}}}`` -> ``{"optim.g.lr": 1}``; lists stay values."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def config_of(run: RunRecord) -> dict[str, Any]:
    return flatten({k: v for k, v in run.recipe.items() if k not in IGNORED_KEYS})


def value_text(value: Any) -> str:
    """A setting as the command line would write it."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def differing_keys(runs: list[RunRecord]) -> list[str]:
    """The recipe keys whose values are not the same in every run (a key one run lacks differs).

    A section one run leaves out (``augment: null``) and another fills in is
    named by the other's keys (``augment.name``), not by the section as well.
    """
    configs = [config_of(r) for r in runs]
    keys = sorted(set().union(*configs)) if configs else []
    missing = object()
    diff = [k for k in keys if len({json.dumps(c.get(k, missing), sort_keys=True, default=str) for c in configs}) > 1]
    return [k for k in diff if not any(other.startswith(k + ".") for other in diff)]


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def common_values(configs: list[dict[str, Any]], keys: list[str]) -> dict[str, str]:
    """For each key, the value more runs share than any other (as ``_key``); keys with a tie are left out."""
    common = {}
    for k in keys:
        counts = collections.Counter(_key(c.get(k, "-")) for c in configs).most_common(2)
        if len(counts) > 1 and counts[0][1] > counts[1][1]:
            common[k] = counts[0][0]
    return common


def labels(runs: list[RunRecord], max_len: int = 60) -> list[str]:
    """Each run named by the settings that differ (``loss.name=hinge, seed=2``); the run id when none do.

    With three runs or more, a setting most runs share is left out of the runs that have it.
    """
    configs = [config_of(r) for r in runs]
    diff = differing_keys(runs)
    # loss.fake_label, which only BCE has, says nothing once loss.name is in the label
    named = {k.removesuffix(".name") for k in diff if k.endswith(".name")}
    diff = [k for k in diff if k.endswith(".name") or k.rpartition(".")[0] not in named
            or all(k in c for c in configs)]
    common = common_values(configs, diff)
    out = []
    for run, config in zip(runs, configs):
        # a run is named by where it departs from what most runs share, so the setting that tells it apart
        # comes first instead of being cut off behind settings it has in common with most others
        own = [k for k in diff if k not in common or _key(config.get(k, "-")) != common[k]]
        text = ", ".join(f"{k}={value_text(config.get(k, '-'))}" for k in own) or run.id
        out.append(text if len(text) <= max_len else text[: max_len - 3] + "...")
    counts = {t: out.count(t) for t in out}
    return [f"{t} ({r.id})" if counts[t] > 1 and t != r.id else t for t, r in zip(out, runs)]


def _implied(key: str, configs: list[dict[str, Any]], diff: list[str]) -> bool:
    """An argument only some runs' component has, when the component itself differs (ngf beside generator.name)."""
    section = key.rpartition(".")[0]
    return bool(section) and f"{section}.name" in diff and key != f"{section}.name" and \
        not all(key in c for c in configs)


def ranked_settings(runs: list[RunRecord]) -> list[str]:
    """The settings that differ, those that tell the most pairs of runs apart first.

    Ties go to a component's ``name``, then to shorter keys. Arguments that
    come with a component (StyleGAN2's ``channel_base`` where the other run
    is DCGAN) follow every other setting: the component's name explains them.
    """
    configs = [config_of(r) for r in runs]
    diff = differing_keys(runs)

    def pairs(key: str) -> int:
        counts = collections.Counter(_key(c.get(key, "-")) for c in configs)
        return (len(configs) ** 2 - sum(n * n for n in counts.values())) // 2

    return sorted(diff, key=lambda k: (_implied(k, configs, diff), -pairs(k), not k.endswith(".name") and k != "name",
                                       k.count("."), len(k), k))


def short_ids(runs: list[RunRecord]) -> list[str]:
    """Each run's id without its date and time (``20261130-120000-ab12`` -> ``ab12``); whole where that is ambiguous."""
    tails = [r.id.rsplit("-", 1)[-1] if r.id.count("-") >= 2 else r.id for r in runs]
    counts = collections.Counter(tails)
    return [t if counts[t] == 1 else r.id for t, r in zip(tails, runs)]


def legend_labels(runs: list[RunRecord], max_len: int = 40) -> list[str]:
    """Each run as its short id plus the setting that tells it apart (``ab12 loss.name=hinge``), for legends.

    The setting is the highest-ranked one (:func:`ranked_settings`) in which
    the run departs from what most runs have (a run that departs nowhere: the
    top setting's value); a second follows only while the first is shared
    with another run, and while it fits in ``max_len`` characters.
    """
    configs = [config_of(r) for r in runs]
    ranked = [k for k in ranked_settings(runs) if k not in NOT_NAMING]
    common = common_values(configs, ranked)
    shown: list[list[str]] = []
    for config in configs:
        own = [k for k in ranked if k not in common or _key(config.get(k, "-")) != common[k]] or ranked[:1]
        shown.append([f"{k}={short_value(config.get(k, '-'))}" for k in own])
    out = []
    for short, parts in zip(short_ids(runs), shown):
        text, used = short, 0
        for part in parts:
            unique = used and sum(other[:used] == parts[:used] for other in shown) == 1
            if unique or (used and len(text) + 2 + len(part) > max_len):
                break
            text += (", " if used else " ") + part
            used += 1
        out.append(text if len(text) <= max_len else text[: max_len - 1] + "…")
    return out


# Settings a legend never names a run by: the replicate axis says nothing about what was tried.
NOT_NAMING = ("seed",)


def short_value(value: Any, limit: int = MAX_CELL) -> str:
    """A setting's value for a table cell or legend: components named (``[r1, path_length]``), long text cut."""
    if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        text = "[" + ", ".join(str(v["name"]) for v in value) + "]"
    else:
        text = value_text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
