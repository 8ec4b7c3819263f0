"""`gankit compare` over runs of different recipes, and sweep plots: readable tables, honest panels and bands.

The runs are written as a run directory holds them (the shipped recipes,
resolved, and metrics rows) without training: quickstart (DCGAN, BCE, SWD at
32 pixels), stylegan2_tiny (non-saturating loss, SWD at 16) and r3gan_tiny
(relativistic loss, SWD at 16).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import gankit
from gankit.recipe.load import resolved
from gankit.runs import groups as G
from gankit.runs import plots
from gankit.runs.compare import MAX_SETTINGS, run_table
from gankit.runs.direction import higher_is_better
from gankit.runs.settings import config_of, differing_keys, legend_labels, ranked_settings
from gankit.rundir.record import RunRecord, load_run
from gankit.runs.stats import mean_interval
from helpers import REPO, run_cli

RECIPES = {"quickstart": ("bce", 32, "1a2b"), "stylegan2_tiny": ("nonsaturating", 16, "3c4d"),
           "r3gan_tiny": ("relativistic", 16, "5e6f")}


def swd_row(step: int, value: float, resolution: int) -> dict:
    """An SWD row with the provenance the evaluator writes (the parts that decide comparability)."""
    return {"kind": "eval", "step": step, "metric": "swd", "value": value, "std": None, "num_real": 1797,
            "num_fake": 1000, "reference": {"dataset": "digits", "transform": {"image_size": resolution}},
            "feature_extractor": "laplacian_pyramid_patches", "weights_sha256": None,
            "input_resolution": resolution, "resize": "none (native resolution)"}


def write_run(root: Path, recipe_name: str, seed_offset: int = 0) -> Path:
    loss, resolution, tail = RECIPES[recipe_name]
    recipe = resolved(gankit.load_recipe(REPO / "recipes" / f"{recipe_name}.yaml"))
    run_id = f"20261201-12000{seed_offset}-{tail}"
    run_dir = root / recipe_name / run_id
    (run_dir / "checkpoints").mkdir(parents=True)
    recipe["gankit"] = {"run_id": run_id, "overrides": []}
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    rows = [{"kind": "train", "step": s, "loss_d": 0.5 + s / 1000, "loss_g": 2.0 - s / 1000, "img_per_s": 100.0}
            for s in range(50, 401, 50)]
    rows += [swd_row(200, 40.0, resolution), swd_row(400, 30.0 - seed_offset, resolution)]
    rows.append({"kind": "end", "step": 400, "status": "finished"})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run_dir


@pytest.fixture
def three(tmp_path) -> list[Path]:
    return [write_run(tmp_path / "runs", name) for name in RECIPES]


def test_the_table_shows_the_settings_that_explain_most_and_counts_the_rest(three, tmp_path):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    for run_dir in three:  # a skipped-metrics event, as a run without the Inception weights records: a long note
        skipped = {"kind": "event", "step": 0, "event": "metrics_skipped", "metrics": ["fid", "is", "kid"],
                   "reason": "the Inception weights are not on this machine and cannot be downloaded (offline?)",
                   "fill_in": f"gankit eval {run_dir} --log"}
        with (run_dir / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(skipped) + "\n")
    result = run_cli("compare", *map(str, three), cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert all(len(line) < 160 for line in result.stdout.splitlines()), result.stdout  # notes wrap like the table
    assert "note: fid, is, kid were skipped in 3 run(s)" in result.stdout
    lines = result.stdout.splitlines()
    table = lines[:5]
    assert all(len(line) < 160 for line in table), max(map(len, table))
    header = re.split(r"\s{2,}", table[0])
    settings = header[3:header.index("steps")]
    assert 1 <= len(settings) <= MAX_SETTINGS
    assert {"generator.name", "loss.name"} <= set(settings)  # what tells the recipes apart, not their widths
    runs = [load_run(p) for p in three]
    configs = [config_of(r) for r in runs]
    # no argument only some runs' generator has (DCGAN's ngf, StyleGAN2's channel_base): generator.name says it
    assert all(all(k in c for c in configs) for k in settings if k.startswith(("generator.", "discriminator.")))
    more = len([k for k in differing_keys(runs) if k != "name"]) - len(settings)
    assert more > 50 and f"{more} more settings differ: " in lines[5] and len(lines[5]) < 160
    assert "swd↓ final" in table[0]  # which way is better
    # the plot goes beside the runs (their common folder), never into the working directory
    assert f"plot: {tmp_path / 'runs' / 'compare.png'}" in result.stdout
    assert (tmp_path / "runs" / "compare.png").is_file() and not list(elsewhere.iterdir())


def test_runs_measured_differently_or_with_losses_of_another_kind_get_panels_of_their_own(three):
    runs = [load_run(p) for p in three]
    metric_row, d_row, g_row = plots.run_panels(runs, "swd")
    loss_row = d_row + g_row
    assert sorted(sorted(i for i, _, _ in p.lines) for p in metric_row) == [[0], [1, 2]]  # SWD at 32 vs at 16
    assert sorted(p.title for p in metric_row) == ["swd↓: input_resolution=16", "swd↓: input_resolution=32"]
    assert [p.title for p in loss_row] == ["loss_d (bce)", "loss_d (nonsaturating)", "loss_d (relativistic)",
                                          "loss_g (bce)", "loss_g (nonsaturating)", "loss_g (relativistic)"]
    assert all(len(p.lines) == 1 for p in loss_row)


def test_legends_name_a_run_by_its_short_id_and_the_setting_that_tells_it_apart(three):
    runs = [load_run(p) for p in three]
    names = legend_labels(runs)
    assert names == ["1a2b name=quickstart", "3c4d name=stylegan2_tiny", "5e6f name=r3gan_tiny"]
    assert ranked_settings(runs)[0] == "name"  # it tells every pair apart, and a name comes first


def test_sweep_plots_split_losses_by_kind_and_keep_non_negative_bands_non_negative():
    def run(name, loss, values):
        rows = [{"kind": "train", "step": s, "loss_d": v, "loss_g": v} for s, v in zip((10, 20, 30, 40), values)]
        return RunRecord(Path(name), {"name": "s", "loss": {"name": loss}}, rows + [{"kind": "end", "status":
                                                                                   "finished"}])

    # three seeds of a loss near 0 with one outlier: Student t's band would reach far below 0
    bce = [run(f"b{i}", "bce", [v] * 4) for i, v in enumerate((0.01, 0.02, 3.0))]
    hinge = [run(f"h{i}", "hinge", [v] * 4) for i, v in enumerate((1.0, 1.1, 1.2))]
    groups = G.make_groups(bce + hinge, ["loss.name"])
    d_row, g_row = plots.group_panels(groups, None)
    losses = d_row + g_row
    assert [p.title for p in losses] == ["loss_d (bce) — mean, 95% band", "loss_d (hinge) — mean, 95% band",
                                         "loss_g (bce) — mean, 95% band", "loss_g (hinge) — mean, 95% band"]
    assert mean_interval([0.01, 0.02, 3.0]).low < -2  # what the band used to be
    steps, mean, low, high = plots.group_curve(groups[0], "loss_d")
    assert min(low) >= 0 and all(lo <= m <= hi for lo, m, hi in zip(low, mean, high))
    signed = [run(f"w{i}", "wgan", [v] * 4) for i, v in enumerate((-1.0, 0.5, 2.0))]
    _, _, low, _ = plots.group_curve(G.make_groups(signed, ["loss.name"])[0], "loss_d")
    assert min(low) < -1  # a quantity that can be negative keeps Student t's interval
    png = plots.plot_groups(groups, None, None)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_metric_column_says_which_way_is_better(tmp_path):
    def run(name, fid, is_):
        rows = [{"kind": "eval", "step": 10, "metric": "fid", "value": fid},
                {"kind": "eval", "step": 10, "metric": "is", "value": is_}, {"kind": "end", "status": "finished"}]
        return RunRecord(tmp_path / name, {"name": "s", "seed": int(name[-1]), "loss": {"name": name[0]}}, rows)

    runs = [run("a1", 10.0, 2.0), run("a2", 12.0, 2.5), run("b1", 20.0, 1.5), run("b2", 22.0, 1.4)]
    groups = G.make_groups(runs, ["loss.name"])
    header, _ = G.group_table(groups, ["fid", "is"])
    assert [h for h in header if h.startswith(("fid", "is"))] == [
        "fid↓ mean", "fid↓ 95% CI", "fid↓ best", "fid↓ worst", "is↑ mean", "is↑ 95% CI", "is↑ best", "is↑ worst"]
    _, rows = G.baseline_table(groups, groups[0], ["fid", "is"])
    assert [r[1] for r in rows] == ["fid↓", "is↑"]
    assert [h for h in run_table(runs, "fid").header if "↓" in h or "↑" in h] == ["fid↓ final", "fid↓ best",
                                                                                  "is↑ final"]
    assert higher_is_better("precision") and not higher_is_better("fid")
    assert higher_is_better("mine", [{"metric": "mine", "higher_is_better": True}])  # a metric's row says so itself


def test_a_sweep_s_plot_goes_into_the_sweep_directory(tmp_path):
    from gankit.commands.compare import default_out
    from gankit.runs.compare import Selection

    runs = [load_run(write_run(tmp_path / "a", "quickstart")), load_run(write_run(tmp_path / "b", "quickstart"))]
    assert default_out(Selection(runs)) == tmp_path / "compare.png"
    sweep = tmp_path / "a"
    assert default_out(Selection(runs[:1], sweeps=[sweep])) == sweep / "compare.png"


def test_the_scaffold_hint_works_after_the_plain_set_up(tmp_path):
    """`gankit new-plugin` run as .venv/bin/gankit (nothing activated): the hint's commands name that environment,
    and its install asks for the [test] extra, which holds pytest."""
    import tomllib

    plugin_dir = tmp_path / "plugins"
    python = Path(sys.executable)
    gankit_program = python.parent / "gankit"
    result = subprocess.run([str(gankit_program), "new-plugin", "hint_gan", "--dir", "plugins"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PATH": "/usr/bin:/bin"})  # the venv's bin is not on PATH
    assert result.returncode == 0, result.stderr
    steps = result.stdout.split("next:\n")[1].splitlines()
    install, listing, train = (line.strip() for line in steps[:3])
    program, *rest = shlex.split(install.partition("#")[0])
    # the environment's own interpreter (python or python3: whichever the gankit script's first line names)
    assert Path(program).parent == python.parent and Path(program).resolve() == python.resolve()
    assert rest == ["-m", "pip", "install", "-e", "plugins/hint_gan[test]"]
    assert listing == f"{gankit_program} plugins"
    assert train == (f"cd plugins/hint_gan && {gankit_program} run recipes/hint_gan_digits.yaml && "
                     f"{program} -m pytest")
    extra = tomllib.loads((plugin_dir / "hint_gan" / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("pytest") for req in extra["test"])
    # the programs it names run from where the hint runs them (the recipe's folder after the cd)
    cd, _, rest = train.partition(" && ")
    program = shlex.split(rest)[0]
    check = subprocess.run(f"{cd} && {shlex.quote(program)} --version", shell=True, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and "gankit" in check.stdout, check.stderr
    assert (plugin_dir / "hint_gan" / "recipes" / "hint_gan_digits.yaml").is_file()


def test_the_comparing_runs_guide_opens_with_its_title():
    text = (REPO / "docs" / "comparing-runs.md").read_text(encoding="utf-8")
    assert text.startswith("# Comparing runs honestly") and "Text for the README" not in text


def test_the_hint_names_a_virtual_environment_inside_the_folder_by_its_relative_path(tmp_path, monkeypatch):
    """The README's set-up: gankit in ./.venv, run from the repository as .venv/bin/gankit."""
    from gankit.templates import next_steps

    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "gankit"):
        (bin_dir / name).write_text("")
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    install, listing, train = next_steps(tmp_path / "plugins" / "my_gan", cwd=tmp_path)
    assert install.startswith(".venv/bin/python -m pip install -e 'plugins/my_gan[test]'")
    assert listing == ".venv/bin/gankit plugins"
    assert train == ("cd plugins/my_gan && ../../.venv/bin/gankit run recipes/my_gan_digits.yaml && "
                     "../../.venv/bin/python -m pytest")
