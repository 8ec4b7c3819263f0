"""docs/tutorial.ipynb runs top to bottom (issue 23), and training from Python survives what a notebook does to it."""

import multiprocessing
import os
import signal
import time

import pytest

from gankit.recipe import validate
from gankit.training.reporter import Reporter
from gankit.training.trainer import RunInterrupted, train
from helpers import REPO


def test_an_interrupted_run_leaves_no_workers_and_the_next_run_in_the_same_process_trains(tiny, monkeypatch):
    tiny["data"]["workers"] = 1
    tiny["train"].update(steps=50, sample_every=None, checkpoint_every=None)
    original = Reporter.step_done

    def step_done(self, n):
        original(self, n)
        if n == 3:
            os.kill(os.getpid(), signal.SIGINT)  # what Jupyter's interrupt button sends the kernel

    monkeypatch.setattr(Reporter, "step_done", step_done)
    host = signal.getsignal(signal.SIGINT)  # the kernel's (ignored, in a job a shell started in the background)
    with pytest.raises(RunInterrupted):
        train(validate(tiny))
    deadline = time.time() + 30
    while multiprocessing.active_children() and time.time() < deadline:  # loader workers wind down
        time.sleep(0.1)
    assert not multiprocessing.active_children()
    assert signal.getsignal(signal.SIGINT) is host  # the host's handler is back
    monkeypatch.setattr(Reporter, "step_done", original)
    tiny["train"]["steps"] = 4
    run_dir = train(validate(tiny))  # the plugin host, the loggers and the loader all start afresh
    assert (run_dir / "samples" / "step_0000004.png").is_file()


@pytest.mark.slow
def test_the_tutorial_notebook_executes_top_to_bottom(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(REPO / "docs" / "tutorial.ipynb", as_version=4)
    os.environ.update(TUTORIAL_OUT=str(tmp_path / "runs"), TUTORIAL_STEPS="60", OMP_WAIT_POLICY="PASSIVE")
    try:
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for key in ("TUTORIAL_OUT", "TUTORIAL_STEPS"):
            os.environ.pop(key, None)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    kinds = {kind for o in outputs for kind in o.get("data", {})}
    assert {"image/gif", "image/png", "application/vnd.jupyter.widget-view+json"} <= kinds  # grids inline, tqdm's bar
    text = "".join(o.get("text", "") for o in outputs)
    assert "interrupted (SIGINT): checkpoint saved" in text and "resuming " in text
    assert len(list((tmp_path / "runs").glob("*/*/progress.gif"))) == 3  # two runs compared, one stopped and resumed
