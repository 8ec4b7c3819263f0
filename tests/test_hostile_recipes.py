"""Hostile recipes: a property-based fuzzer, and the bugs it found filed as regular tests.

The fuzzer mutates the tiny recipe (values of every type, huge and negative
numbers, unicode, deleted, added and renamed keys, extra nesting, YAML anchors
and aliases, billion-laughs alias bombs, self-referencing aliases, Python
tags, broken text) and feeds each result to ``gankit validate`` in-process.
Each example has one outcome, the library's verdict on it: 0 when
``load_recipe`` and the trial build accept it, else exit 2 with ``error:
...``; never another exception, never anything constructed. Hostile values
are also trained, each case pinned to its one outcome (trained, a clean
error, or stopped on non-finite values).
"""

from __future__ import annotations

import copy
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gankit.core.errors import RecipeError
from gankit.recipe import load_recipe
from helpers import TINY, gankit, time_limit

TAG = "__GANKIT_FUZZ_TAG__"
SECTIONS = [(), ("data",), ("generator",), ("discriminator",), ("loss",), ("train",), ("log",), ("optim",),
            ("optim", "g"), ("health",), ("eval",), ("log", "wandb")]
KEYS = ["name", "seed", "out_dir", "device", "plugins", "image_size", "channels", "batch_size", "workers", "nz",
        "ngf", "ndf", "steps", "epochs", "sample_every", "num_samples", "checkpoint_every", "log_every", "lr",
        "betas", "progress", "on_nonfinite", "collapse_ratio", "metrics", "mode", "on_bad_image", "drop_last"]
WEIRD_TEXT = ["", " ", "\x00", "ü", "名前", "../..", "/", "a/b", "🙂", "\u202e", "ｔｒａｉｎ", "x" * 5000, "nan",
              "1e400", "0x10", "~", "null", "yes", "2e-4", "-0", "\\", "${HOME}", "%s%s"]
# YAML written as is in place of a value: Python tags, other tags, deep nesting, alias tricks.
RAW = ["!!python/object/apply:os.system ['touch {marker}']", "!!python/object/new:pathlib.Path ['{marker}']",
       "!!python/name:os.system", "!!python/module:os", "!!binary aGVsbG8=", "!!set {{a, b}}",
       "!!timestamp 2001-12-14", "!!float .inf", "!!str 3", "!!int '7'", "!!map {{a: 1}}", "!!omap [a: 1]",
       "!<tag:yaml.org,2002:python/object/apply:os.system> ['touch {marker}']", "!custom 3",
       "[" * 3000 + "]" * 3000, "{{a: " * 1000 + "1" + "}}" * 1000, "[" * 60 + "]" * 60, "&x [*x]", "&x {{a: *x}}",
       "*undefined", "&x 3", "{{<<: {{steps: 3}}}}", "\"\\ud800\"", "\"a\\0b\"", "\"\\x00\"", "\"\\U0001F600\"",
       "0b101", "0o17", "1_000", "+.inf", "-.nan", ".NaN", "2001-12-14t21:59:43.10-05:00", "|\n  multi\n  line",
       "? [a, b]\n  : c", "{{? [a]: 1}}", "!!null", "''", "\"\\t\\n\"", "1e400", "-1e400", "10000000000000000000000"]

scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2, 2**31, 2**63, 2**64, 10**100, -(10**100)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(WEIRD_TEXT),
    st.booleans(),
    st.none(),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=3),
                      max_leaves=6)
paths = st.tuples(st.sampled_from(SECTIONS), st.sampled_from(KEYS)).map(lambda p: (*p[0], p[1]))
mutation = st.one_of(
    st.tuples(st.just("set"), paths, values),
    st.tuples(st.just("delete"), paths, st.none()),
    st.tuples(st.just("rename"), paths, st.sampled_from(KEYS) | st.text(min_size=1, max_size=8)),
    st.tuples(st.just("wrap"), paths, st.booleans()),
    st.tuples(st.just("alias"), paths, paths),
    st.tuples(st.just("bomb"), paths, st.sampled_from([3, 9, 12, 40])),
    st.tuples(st.just("cycle"), paths, st.none()),
    st.tuples(st.just("raw"), paths, st.sampled_from(RAW)),
)
text_mutation = st.one_of(
    st.none(), st.none(), st.none(),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("prefix"), st.sampled_from(["\ufeff", "%YAML 1.1\n---\n", "--- !!map\n", "\t", "- ", "[" * 3000,
                                                  "{" * 200, "? [a, b]\n: c\n", "&a a: *a\n", "*missing\n"])),
    st.tuples(st.just("suffix"), st.sampled_from(["\n---\nname: second\n", "\n...\n", "\nname: dup\n", "\x00",
                                                  "\n" + "]" * 10, "\nplugins: *undefined\n"])),
)


def bomb(depth: int) -> list:
    """A billion-laughs value: depth levels of 9 references to the level below."""
    node: list = ["lol"] * 9
    for _ in range(depth - 1):
        node = [node] * 9
    return node


def _parent(raw: dict, path: tuple, create: bool):
    node = raw
    for part in path[:-1]:
        child = node.get(part) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            if not create or not isinstance(node, dict):
                return None
            child = node[part] = {}
        node = child
    return node if isinstance(node, dict) else None


def mutate(raw: dict, op: tuple, marker: Path) -> None:
    kind, path, arg = op
    parent = _parent(raw, path, create=kind in ("set", "bomb", "cycle", "raw"))
    if parent is None:
        return
    key = path[-1]
    if kind == "set":
        parent[key] = arg
    elif kind == "delete":
        parent.pop(key, None)
    elif kind == "rename" and key in parent:
        parent[arg] = parent.pop(key)
    elif kind == "wrap" and key in parent:
        parent[key] = [parent[key]] if arg else {"x": parent[key]}
    elif kind == "alias":
        other = _parent(raw, arg, create=True)
        if other is not None and key in parent:
            other[arg[-1]] = parent[key]  # the same object twice: safe_dump writes an anchor and an alias
    elif kind == "bomb":
        parent[key] = bomb(arg)
    elif kind == "cycle":
        loop: list = []
        loop.append(loop)
        parent[key] = loop
    elif kind == "raw":
        parent[key] = TAG + arg.format(marker=marker).replace("\n", "\\n")


def render(raw: dict, text_op, marker: Path) -> bytes:
    text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=10**6)
    # A raw snippet stands in for the value (quoted by safe_dump): put it back unquoted.
    lines = text.split("\n")
    for n, line in enumerate(lines):
        if TAG in line:
            head, _, rest = line.partition(TAG)
            quote = head[-1] if head.endswith(("'", '"')) else ""
            snippet = rest[: len(rest) - len(quote)] if quote and rest.endswith(quote) else rest
            if quote == "'":
                snippet = snippet.replace("''", "'")
            elif quote == '"':
                snippet = snippet.encode().decode("unicode_escape")  # undo safe_dump's escapes
            indent = " " * (len(head) - len(head.lstrip()) + 2)
            lines[n] = head[: len(head) - len(quote)] + snippet.replace("\\n", "\n" + indent)
    text = "\n".join(lines)
    if text_op is not None:
        kind, arg = text_op
        if kind == "truncate":
            text = text[: int(len(text) * arg)]
        elif kind == "prefix":
            text = arg + text
        else:
            text = text + arg
    return text.encode("utf-8", "surrogatepass")


def verdict(path: Path) -> int:
    """What ``gankit validate`` must answer for ``path``: 0 when the library accepts it, 2 when it refuses."""
    from gankit.core.errors import GankitError
    from gankit.recipe.preflight import preflight

    try:
        with time_limit(10):
            preflight(load_recipe(path), str(path))
    except GankitError:
        return 2
    return 0


def check_clean(code: int, expected: int, err: str, marker: Path) -> None:
    assert code == expected, (code, err)
    if code == 2:
        assert err.startswith("error: ") and "Traceback" not in err, err
    assert not marker.exists(), "a YAML tag ran code"


@pytest.mark.slow
def test_fuzz_recipes_validate_or_fail_cleanly():
    counts: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        marker = tmp / "pwned"

        @settings(max_examples=120, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.lists(mutation, min_size=1, max_size=3), text_mutation)
        def check(ops, text_op):
            raw = copy.deepcopy(TINY)
            raw["out_dir"] = str(tmp / "runs")
            for op in ops:
                mutate(raw, op, marker)
            path = tmp / "recipe.yaml"
            path.write_bytes(render(raw, text_op, marker))
            expected = verdict(path)
            code, _, err = gankit("validate", str(path))
            check_clean(code, expected, err, marker)
            counts["valid" if code == 0 else "invalid"] += 1

        check()
    total = sum(counts.values())
    print(f"\nrecipe fuzz: {total} mutated recipes validated: {counts['valid']} valid, {counts['invalid']} "
          "clean errors (exit 2), 0 tracebacks")
    assert counts["valid"] >= 10 and counts["invalid"] >= 50, counts


# -- hostile values trained: each case has one outcome --------------------------------------
INF, NAN = float("inf"), float("nan")
# (override of the tiny recipe, the exit code of `gankit run`, words of its last line). 0: trained;
# 2: a clean error naming the key (exit 2, "error: ..."); 3: stopped on non-finite values, last good checkpoint kept.
RUN_CASES = [
    ({"seed": -1}, 0, ""),
    ({"seed": 2**64 - 1}, 0, ""),
    ({"seed": 2**64}, 2, "seed: 18446744073709551616 is out of range"),
    ({"seed": -(2**63) - 1}, 2, "seed: -9223372036854775809 is out of range"),
    ({"name": "名前"}, 0, ""),
    ({"name": "a/b"}, 0, ""),  # a folder inside out_dir
    ({"name": "../.."}, 2, "must be a folder name under out_dir"),
    ({"name": "x" * 300}, 2, "name: a folder name is at most 255 bytes"),
    ({"device": "meta"}, 2, "device: 'meta' is not a device gankit trains on"),
    ({"device": "CPU"}, 2, "device: 'CPU' is not a device gankit trains on"),
    ({"device": "cuda:x"}, 2, "device: 'cuda:x' is not a device gankit trains on"),
    ({"device": ""}, 2, "device: '' is not a device gankit trains on"),
    ({"data": {"batch_size": 2048}}, 0, ""),  # one batch: the whole dataset
    ({"data": {"batch_size": 2048, "drop_last": True}}, 2, "data.batch_size 2048 is larger than the dataset"),
    ({"data": {"batch_size": 0}}, 2, "data.batch_size: Input should be greater than 0"),
    ({"data": {"batch_size": 2**64}}, 2, "data.batch_size: 18446744073709551616 is out of range"),
    ({"data": {"image_size": 5}}, 2, "generator 'dcgan' rejected its arguments"),
    ({"data": {"image_size": 10**9}}, 2, "generator 'dcgan' rejected its arguments"),
    ({"generator": {"nz": 2**63 - 1}}, 2, "generator 'dcgan' (plugin 'dcgan', "),
    ({"generator": {"ngf": 10**12}}, 2, "failed to build"),
    ({"generator": {"ngf": 1}}, 0, ""),
    ({"train": {"num_samples": 1}}, 0, ""),
    ({"train": {"num_samples": 10**12}}, 2, "out of memory during setting up the run"),
    ({"train": {"sample_every": 10**18, "log_every": 10**18}}, 0, ""),
    ({"optim": {"g": {"name": "sgd", "lr": INF}}}, 3, "training stopped, non-finite values at step 2"),
    ({"optim": {"g": {"name": "adamw", "lr": 1e-8}}}, 0, ""),
    ({"optim": {"d": {"name": "adam", "betas": [2, 3]}}}, 2, "optim.d: optimizer 'adam' rejected its arguments: "
                                                             "Invalid beta parameter at index 0: 2.0"),
    ({"loss": {"name": "bce", "real_label": NAN}}, 3, "training stopped, non-finite values at step 1"),
    ({"loss": {"name": "bce", "real_label": 3.4e38}}, 3, "training stopped, non-finite values at step 1"),
    ({"loss": {"name": "bce", "real_label": NAN}, "health": {"on_nonfinite": "skip"}}, 0, ""),
    ({"log": {"progress": "off"}}, 2, "log.progress: Input should be 'auto', 'bar', 'lines' or 'none'"),
]


def _merge(base: dict, change: dict) -> dict:
    for key, value in change.items():
        base[key] = _merge(dict(base.get(key) or {}), value) if isinstance(value, dict) else value
    return base


@pytest.mark.parametrize("change, code, words", RUN_CASES, ids=[repr(c)[:50] for c, _, _ in RUN_CASES])
def test_hostile_values_train_or_end_one_way(change, code, words, tmp_path):
    raw = copy.deepcopy(TINY)
    raw.update(out_dir=str(tmp_path / "runs"), log={"progress": "none"})
    raw["train"]["steps"] = 2
    raw = _merge(raw, change)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    got, _, err = gankit("run", str(path), timeout=120)
    assert got == code, err
    assert "Traceback" not in err and words in err, err
    if code == 2:
        assert err.startswith("error: "), err


def test_one_optimizer_section_written_once_used_twice(tmp_path):
    """A YAML anchor and alias: both players' optimizer is the same mapping (two optimizers are built)."""
    text = yaml.safe_dump({**copy.deepcopy(TINY), "out_dir": str(tmp_path / "runs")}, sort_keys=False)
    text += "optim:\n  g: &adam {name: adam, lr: 0.001}\n  d: *adam\n"
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    code, _, err = gankit("run", str(path), timeout=120)
    assert code == 0, err


# -- what the fuzzers found, filed as regular tests ----------------------------------------
BASE = "name: x\ngenerator: {name: dcgan, nz: 8, ngf: 8}\ndiscriminator: {name: dcgan, ndf: 8}\n"


def problems_of(tmp_path: Path, text: str, overrides=()) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with time_limit(10), pytest.raises(RecipeError) as err:
        load_recipe(path, list(overrides))
    return "\n".join(err.value.problems)


def test_billion_laughs_is_refused_at_once(tmp_path):
    # Found as a hang: the error message quoted the value, and repr() expanded 9**9 aliases.
    lols = "".join(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
    text = BASE + "gankit:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + lols + "train: {steps: *l9}\n"
    assert "aliases expand to more than 100,000 values" in problems_of(tmp_path, text)


def test_alias_inside_its_own_anchor_is_refused(tmp_path):
    assert "train.steps.0: refers to itself" in problems_of(tmp_path, BASE + "train: {steps: &a [*a]}\n")
    assert "refers to itself" in problems_of(tmp_path, BASE + "train: {steps: 1}\ngankit: &g {me: *g}\n")


def test_deep_nesting_is_a_recipe_error(tmp_path):
    # Found as a RecursionError traceback from PyYAML's composer.
    deep = BASE + "train: {steps: 1}\ngankit: " + "[" * 5000 + "]" * 5000 + "\n"
    assert "not valid YAML: nested more than Python can read" in problems_of(tmp_path, deep)
    assert "nested more than 50 levels deep" in problems_of(tmp_path, BASE + "train: {steps: " + "[" * 80 + "]" * 80 + "}\n")
    assert "nested more than 50 levels deep" in problems_of(
        tmp_path, BASE + "train: {steps: 1}\n", ["gankit.x=" + "[" * 80 + "]" * 80])


def test_integers_beyond_64_bits_are_refused(tmp_path):
    # Found as tracebacks from torch.manual_seed, torch.randn and itertools.islice.
    text = BASE + "train: {steps: 1}\n"
    assert "seed: 18446744073709551616 is out of range (the seeds torch accepts" in problems_of(tmp_path, text, ["seed=18446744073709551616"])
    assert "data.batch_size: 18446744073709551616 is out of range (64-bit integers" in problems_of(
        tmp_path, text, ["data.batch_size=18446744073709551616"])
    assert load_recipe(tmp_path / "r.yaml", ["seed=18446744073709551615", "train.steps=9223372036854775807"]).seed == 2**64 - 1


def test_nul_characters_and_lone_surrogates_are_refused(tmp_path):
    # Found as a ValueError traceback from mkdir ("embedded null byte").
    assert "name: contains a NUL character" in problems_of(tmp_path, BASE.replace("name: x", 'name: "a\\0b"') + "train: {steps: 1}\n")
    assert "lone surrogate" in problems_of(tmp_path, BASE + 'train: {steps: 1}\nout_dir: "\\ud800"\n')


def test_values_the_schema_allows_but_no_run_can_use(tmp_path):
    text = BASE + "train: {steps: 1}\n"
    assert "device: 'meta' is not a device gankit trains on" in problems_of(tmp_path, text, ["device=meta"])
    assert "data.workers: 100000 processes is more than gankit starts" in problems_of(tmp_path, text, ["data.workers=100000"])
    assert "must be a folder name under out_dir" in problems_of(tmp_path, text, ["name=../../elsewhere"])


def test_python_tags_construct_nothing(tmp_path):
    marker = tmp_path / "pwned"
    for tag in RAW[:3] + RAW[12:13]:
        text = BASE + "train: {steps: 1}\nseed: " + tag.format(marker=marker) + "\n"
        assert "not valid YAML" in problems_of(tmp_path, text)
    assert not marker.exists()


@pytest.mark.parametrize("override, words", [
    # found as a RuntimeError traceback; the trial build before the run now names the generator instead
    ("data.image_size=1000000000", "generator 'dcgan' rejected its arguments"),
    ("train.num_samples=9223372036854775807", "out of memory during setting up the run"),
    ("optim.g.betas=[2, 3]", "optim.g: optimizer 'adam' rejected its arguments: Invalid beta parameter"),
])
def test_runs_that_cannot_start_end_with_a_clean_error(tiny, write_recipe, override, words):
    code, _, err = gankit("run", str(write_recipe(tiny)), override)
    assert code == 2 and err.startswith("error: ") and words in err, err
