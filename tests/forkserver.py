"""A fork server for tests that kill gankit processes many times.

Starting ``gankit`` costs seconds of imports (torch, torchvision); a test that
kills twenty training processes would spend minutes just starting them. The
server imports gankit once, then forks a child per command: each child is a
real, separate process running ``gankit.cli.main(argv)`` (its own signal
handlers, files and exit code), started in milliseconds, and killed by the
test like any other process.

    with ForkServer() as server:
        pid = server.start(["run", "recipe.yaml"], log=tmp / "log.txt")
        os.kill(pid, signal.SIGKILL)
        status = server.wait(pid)   # -9

Protocol (one JSON object a line): ``{"argv": [...], "log": path}`` answers
``{"pid": N}``; ``{"wait": N}`` answers ``{"status": code or -signal}``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class ForkServer:
    def __init__(self, env: dict | None = None):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
               "WANDB_MODE": "disabled", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, __file__], cwd=REPO, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._read() == {"ready": True}

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server died (exit {self.proc.wait()})")
        return json.loads(line)

    def _ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def start(self, argv: list[str], log: Path, max_file_size: int | None = None) -> int:
        """Fork a child running ``gankit ARGV`` (stdout and stderr to ``log``); its pid.

        ``max_file_size``: no file the child writes may grow beyond this many
        bytes (RLIMIT_FSIZE): writes past it fail with EFBIG, as on a full disk.
        """
        return self._ask({"argv": [str(a) for a in argv], "log": str(log), "fsize": max_file_size})["pid"]

    def wait(self, pid: int) -> int:
        """The child's exit code, or minus the signal that killed it."""
        return self._ask({"wait": pid})["status"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _child(argv: list[str], log: str, fsize: int | None) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    if fsize is not None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a dead process
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    code = 1
    try:
        from gankit import cli

        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _serve() -> None:
    # Everything a run imports, once: the children inherit it.
    import gankit.cli  # noqa: F401
    import gankit.training.trainer  # noqa: F401
    from gankit.core.plugins import get_host
    from sklearn.datasets import load_digits

    get_host()
    load_digits()
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        if "wait" in request:
            _, status = os.waitpid(request["wait"], 0)
            code = os.waitstatus_to_exitcode(status)
            out.write(json.dumps({"status": code}) + "\n")
        else:
            pid = os.fork()
            if pid == 0:
                _child(request["argv"], request["log"], request.get("fsize"))
            out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "tests"))
    _serve()
