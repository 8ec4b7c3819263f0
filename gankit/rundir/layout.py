"""A run directory's making and keeping: its folders, its lock, its recipe.yaml and its plugin copies.

    run_dir, run_id = create_run_dir(out_dir, name)      # <out_dir>/<name>/<run id>/{samples,checkpoints}
    lock = RunLock(run_dir).acquire()                     # one process trains a run at a time
    write_recipe(run_dir, resolved, provenance(...), resume="gankit run --resume RUN")
    recipe = stored_recipe(checkpoint, path)              # the recipe a run trained with, its plugins loaded

``plugins/`` holds copies of the recipe's ``.py`` plugins: resume, sample,
eval and ``gankit.load_generator`` use these, from any working directory.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from gankit.core.version import __version__
from gankit.core.errors import GankitError
from gankit.core.plugins import get_host


def new_run_id() -> str:
    # os.urandom, not the seeded generators: naming a run must not move any random stream.
    return time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(2).hex()


def create_run_dir(out_dir: str, name: str) -> tuple[Path, str]:
    run_id = new_run_id()
    run_dir = Path(out_dir) / name / run_id
    try:
        for sub in ("samples", "checkpoints"):
            (run_dir / sub).mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        raise GankitError(f"cannot create the run directory '{run_dir}': {exc.strerror}; check out_dir") from None
    return run_dir, run_id


def provenance(overrides: list[str], source: str | None, run_id: str, device: torch.device,
               world_size: int = 1) -> dict[str, Any]:
    """What a run records about how it was made (the recipe's `gankit:` key)."""
    return {
        "version": __version__,
        "run_id": run_id,
        "recipe_file": source,
        "overrides": list(overrides),
        "plugins": {p.name: p.version for p in get_host().plugins.values()},
        "torch": str(torch.__version__),
        "python": sys.version.split()[0],
        "device": str(device),  # rank 0's
        "world_size": world_size,  # processes under torchrun (1 without it)
    }


def copy_plugins(run_dir: Path, specs: list[str], base_dir: Path | None) -> tuple[list[str], list[dict[str, Any]]]:
    """Copy the recipe's ``.py`` plugins into ``run_dir/plugins/``.

    Returns the plugins list the run records (each file replaced by its copy,
    relative to the run directory; module plugins unchanged) and one record
    per file: the name the recipe gave, the original's absolute path, the
    copy and its sha256 (the run's truth: the original may change later).
    """
    import shutil

    from gankit.core.fileplugins import sha256
    from gankit.core.plugins import resolve_plugin_file

    recorded, files = [], []
    for spec in specs:
        if not (spec.endswith(".py") or "/" in spec or os.sep in spec):
            recorded.append(spec)
            continue
        src = resolve_plugin_file(spec, base_dir)
        folder = run_dir / "plugins"
        folder.mkdir(exist_ok=True)
        dest, n = folder / src.name, 1
        while dest.exists():  # two plugins called parts.py from different folders
            n += 1
            dest = folder / f"{src.stem}_{n}{src.suffix}"
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        copy = f"plugins/{dest.name}"
        recorded.append(copy)
        files.append({"spec": spec, "original": str(src), "copy": copy, "sha256": sha256(dest)})
    return recorded, files


def plugin_changes(run_dir: Path, files: list[dict[str, Any]]) -> list[str]:
    """A notice for each copied plugin whose original has changed since the run copied it."""
    from gankit.core.fileplugins import sha256

    notices = []
    for f in files or []:
        original = Path(f.get("original", ""))
        if original.is_file() and sha256(original) != f.get("sha256"):
            notices.append(f"plugin {f['spec']} changed since this run copied it ({original}); using the run's "
                           f"copy {run_dir / f['copy']} (sha256 {str(f['sha256'])[:12]}...), the code it trained with")
    return notices


def previous_provenance(run_dir: Path) -> dict[str, Any]:
    """The ``gankit:`` block of a run's recipe.yaml (empty when there is none, or it cannot be read)."""
    try:
        data = yaml.safe_load((Path(run_dir) / "recipe.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    info = data.get("gankit") if isinstance(data, dict) else None
    return info if isinstance(info, dict) else {}


def write_recipe(run_dir: Path, resolved: dict[str, Any], info: dict[str, Any], resume: str) -> None:
    """``recipe.yaml``: the resolved recipe and ``info`` under ``gankit:``, headed by the ``resume`` command."""
    text = (
        f"# Resolved recipe of run {info['run_id']}; resume with: {resume}\n"
        + yaml.safe_dump({**resolved, "gankit": info}, sort_keys=False, width=100)
    )
    tmp = run_dir / ".recipe.yaml.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, run_dir / "recipe.yaml")


class RunLock:
    """An exclusive lock on a run directory while a process trains it (``RUN/.lock``, holding its pid).

    A second process resuming the same run at once is refused, naming the
    first. The operating system releases the lock when the process ends,
    however it ends (a killed run leaves no stale lock).
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self._file = None

    def acquire(self) -> RunLock:
        import fcntl

        f = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise GankitError(f"run '{self.path.parent}' is being trained by process {holder} right now; wait for it "
                              "to finish (or stop it) before resuming it") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        """Remove the lock file and release it (a run directory holds no lock once its run is over)."""
        if self._file is not None:
            self.path.unlink(missing_ok=True)
            self._file.close()  # closing releases the flock
            self._file = None


def remove_stale_files(run_dir: Path) -> list[Path]:
    """Temporaries a killed run left behind: ``samples/.*.tmp-<pid>.png`` and ``.recipe.yaml.tmp``."""
    removed = []
    for tmp in [*(Path(run_dir) / "samples").glob(".*.tmp-*"), Path(run_dir) / ".recipe.yaml.tmp",
                *(Path(run_dir) / "plugins").glob(".*.tmp")]:
        pid = tmp.stem.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
                continue  # its writer still runs
            except OSError:
                pass
        if tmp.exists():
            tmp.unlink()
            removed.append(tmp)
    return removed


def run_dir_of(ckpt_path: Path) -> Path:
    """The run directory of a checkpoint file (``RUN/checkpoints/last.pt``)."""
    return Path(ckpt_path).resolve().parent.parent


def stored_recipe(ckpt: dict[str, Any], ckpt_path: Path, overrides: list[str] = ()):
    """A checkpoint's recipe, validated, its plugins loaded from the run's own copies.

    The run's copies of its ``.py`` plugins are found relative to the run
    directory, from any working directory; a warning names a plugin whose
    original file has changed since (the copy is what the run trained with).
    """
    import warnings

    from gankit.core.plugins import PluginWarning
    from gankit.recipe.load import validate

    run_dir = run_dir_of(ckpt_path)
    for notice in plugin_changes(run_dir, ckpt.get("plugin_files", [])):
        warnings.warn(notice, PluginWarning, stacklevel=2)
    return validate(ckpt["recipe"], f"{ckpt_path} (the run's recipe)", list(overrides), base_dir=run_dir)
