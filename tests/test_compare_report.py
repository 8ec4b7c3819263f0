"""`gankit compare` and `gankit report` on two real tiny runs; the report rendered in headless Chromium."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from gankit import cli
from helpers import TINY

CHROMIUM = Path("/usr/bin/chromium")
WINDOW = (1200, 2400)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> list[Path]:
    """Two tiny runs that differ in generator.ngf and optim.g.lr (wandb off: these read local records)."""
    tmp = tmp_path_factory.mktemp("runs")
    runs = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "disabled")
        mp.setenv("OMP_NUM_THREADS", "1")
        for ngf, lr in ((8, 2e-4), (16, 1e-3)):
            recipe = copy.deepcopy(TINY)
            recipe["out_dir"] = str(tmp / f"out{ngf}")
            recipe["generator"]["ngf"] = ngf
            recipe["optim"] = {"g": {"name": "adam", "lr": lr, "betas": [0.5, 0.999]}}
            path = tmp / f"tiny{ngf}.yaml"
            path.write_text(yaml.safe_dump(recipe))
            assert cli.main(["run", str(path)]) == 0
            (run_dir,) = Path(recipe["out_dir"]).glob("*/*")
            runs.append(run_dir)
    return runs


def add_eval_rows(run_dir: Path, values: list[tuple[int, float]]) -> None:
    """Evaluation rows as the evaluator writes them (value + provenance)."""
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
        for step, value in values:
            f.write(json.dumps({"kind": "eval", "step": step, "metric": "fid", "value": value,
                                "feature_extractor": "inception-v3-compat", "num_samples": 256}) + "\n")


# -- compare ------------------------------------------------------------------------------------------
def test_compare_prints_what_differs_and_plots(two_runs, tmp_path, capsys):
    out = tmp_path / "cmp.png"
    assert cli.main(["compare", *map(str, two_runs), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:2] == ["run", "recipe"]
    assert "generator.ngf" in header and "optim.g.lr" in header
    assert "seed" not in header and "train.steps" not in header  # only what differs
    # No run evaluated anything: no metric columns (the default metric is one the runs recorded).
    assert {"status", "steps", "img/s"} <= set(header) and not {"final", "best"} & set(header)
    for run_dir, ngf in zip(two_runs, ("8", "16")):
        (row,) = [line.split() for line in lines if line.startswith(run_dir.name)]
        assert row[1] == "tiny" and row[2] == "finished" and ngf in row and "4" in row  # 4 steps
        assert float(row[-1]) > 0  # images per second
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width >= 400  # a column of panels: swd (measured offline), loss_d, loss_g
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.std() > 10  # not a blank canvas


def test_compare_reports_final_and_best_fid(two_runs, tmp_path, capsys):
    runs = []
    for i, src in enumerate(two_runs):
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        add_eval_rows(dst, [(2, 80.0 + i), (4, 90.0 + i)])  # best (80) is not the final value (90)
        runs.append(dst)
    assert cli.main(["compare", *map(str, runs), "--metric", "fid", "--out", str(tmp_path / "c.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = re.split(r"\s{2,}", lines[0].strip())
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[2:4]]
    fid_final, fid_best = header.index("fid↓ final"), header.index("fid↓ best")
    assert [(r[fid_final], r[fid_best]) for r in rows] == [("90", "80"), ("91", "81")]


def test_compare_takes_a_folder_of_runs_and_rejects_non_runs(two_runs, tmp_path, capsys):
    assert cli.main(["compare", str(two_runs[0].parent), "--out", str(tmp_path / "c.png")]) == 0
    assert two_runs[0].name in capsys.readouterr().out
    assert cli.main(["compare", str(tmp_path / "missing"), "--out", str(tmp_path / "c.png")]) == 2
    (tmp_path / "empty").mkdir()
    assert cli.main(["compare", str(tmp_path / "empty")]) == 2
    assert "not a gankit run directory" in capsys.readouterr().err


# -- report ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report(two_runs, tmp_path_factory) -> tuple[Path, Path]:
    """The report of the first run (with evaluation rows added): (page, run directory)."""
    run_dir = tmp_path_factory.mktemp("report") / two_runs[0].name
    shutil.copytree(two_runs[0], run_dir)
    add_eval_rows(run_dir, [(2, 120.5), (4, 99.25)])
    out = run_dir.parent / "page" / "report.html"
    assert cli.main(["report", str(run_dir), "--out", str(out)]) == 0
    return out, run_dir


def test_report_is_self_contained(report):
    page, run_dir = report
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", text)  # nothing fetched: every image inline
    assert "<link" not in text and "@import" not in text and "url(" not in text
    assert not re.search(r"https?://", text)
    srcs = re.findall(r"<img [^>]*src='([^']*)'", text)
    assert srcs and all(s.startswith(("data:image/png;base64,", "data:image/gif;base64,")) for s in srcs)
    assert text.count("class='grid'") == 2  # both fixed-noise grids (steps 2 and 4)
    assert "inception-v3-compat" in text and "99.25" in text  # final FID with its provenance
    assert "generator:" in text and "ngf: 8" in text  # the resolved recipe


def test_report_default_location_and_errors(two_runs, tmp_path, capsys):
    run_dir = tmp_path / "r"
    shutil.copytree(two_runs[1], run_dir)
    assert cli.main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").is_file()
    (tmp_path / "empty").mkdir()
    assert cli.main(["report", str(tmp_path / "empty")]) == 2
    assert "not a gankit run directory" in capsys.readouterr().err
    # A folder holding runs is a page over all of them (gankit report RUN [RUN...]).
    assert cli.main(["report", str(tmp_path), "--out", str(tmp_path / "all.html")]) == 0
    assert "<h1>1 run</h1>" in (tmp_path / "all.html").read_text(encoding="utf-8")


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp}", "--force-device-scale-factor=1", f"--window-size={WINDOW[0]},{WINDOW[1]}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium not installed (apt-get install -y chromium)")
def test_report_renders_in_chromium(report, tmp_path):
    page, run_dir = report
    url = page.resolve().as_uri()  # file://, no server, no network
    dom = chromium("--dump-dom", url, tmp=tmp_path / "profile1").stdout
    # The page's own script ran after load and checked every image decoded (naturalWidth > 0).
    body = re.search(r"<body[^>]*>", dom).group(0)
    imgs = re.findall(r"<img [^>]*>", dom)
    assert f'data-images-ok="{len(imgs)}/{len(imgs)}"' in body, body
    assert "class=\"warn\"" not in dom  # the page warns visibly when an image failed
    rects = {}
    for tag in imgs:
        kind = re.search(r'class="(\w+)"', tag).group(1)
        assert 'data-loaded="1"' in tag
        rect = re.search(r'data-rect="([\d,.-]+)"', tag).group(1)
        rects.setdefault(kind, []).append(tuple(map(int, rect.split(","))))
    assert len(rects["curve"]) >= 6 and len(rects["grid"]) == 2  # 5 training panels + FID, 2 grids
    assert len(rects["tutorial"]) == 3  # the tutorial's loss plot, progression GIF and real-vs-fake figure

    shot_path = tmp_path / "shot.png"
    chromium(f"--screenshot={shot_path}", url, tmp=tmp_path / "profile2")
    shot = np.asarray(Image.open(shot_path).convert("RGB")).astype(int)
    assert shot.shape[:2] == (WINDOW[1], WINDOW[0])

    def region(rect):
        x, y, w, h = rect
        assert y + h <= shot.shape[0], "image below the screenshot"
        return shot[y:y + h, x:x + w]

    # Curves: matplotlib's first line colour (#1f77b4) is drawn in every panel.
    for rect in rects["curve"]:
        blue = (np.abs(region(rect) - [0x1F, 0x77, 0xB4]).sum(axis=2) < 60).sum()
        assert blue > 50, (rect, blue)
    # Grids: the rendered pixels match the grid files (same mean brightness, not blank).
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    for rect, path in zip(sorted(rects["grid"]), grids):
        shown = region(rect).mean(axis=2)
        source = np.asarray(Image.open(path).convert("L")).astype(float)
        assert shown.std() > 5
        assert abs(shown.mean() - source.mean()) < 12, (shown.mean(), source.mean())


def test_grids_are_thinned_evenly_keeping_the_last():
    from gankit.runs.report import pick_grids

    paths = [Path(f"step_{i:07d}.png") for i in range(1, 31)]
    picked = pick_grids(paths, limit=12)
    assert len(picked) == 12 and picked[0] == paths[0] and picked[-1] == paths[-1]
    assert pick_grids(paths[:5], limit=12) == paths[:5]


def test_differing_keys_include_keys_only_one_run_has(tmp_path):
    from gankit.runs.compare import RunRecord, differing_keys

    a = RunRecord(tmp_path / "a", {"name": "x", "seed": 1, "loss": {"name": "bce"}, "gankit": {"version": "1"}})
    b = RunRecord(tmp_path / "b", {"name": "x", "seed": 1, "loss": {"name": "hinge", "margin": 1.0},
                                   "gankit": {"version": "2"}})
    assert differing_keys([a, b]) == ["loss.margin", "loss.name"]  # gankit provenance is not a setting
