"""Running a sweep's jobs: K ``gankit run`` processes at a time, stopped cleanly, resumable.

Each job is ``python -m gankit run RECIPE OVERRIDES...`` (or ``gankit run
--resume RUN_DIR`` for an interrupted one) in its own session, its output
appended to ``logs/<job>.log``, with ``OMP_NUM_THREADS`` = cores // K (at
least 1, at most an ``OMP_NUM_THREADS`` the sweep itself was given) and,
when there are GPUs, one of them per job slot through
``CUDA_VISIBLE_DEVICES``. ``sweep.yaml`` is rewritten (atomically) whenever a
job starts, finds its run directory or ends.

Ctrl-C / SIGTERM: no new job starts and each running job gets SIGINT, so it
saves a checkpoint and exits 130; the jobs are recorded ``interrupted`` and
``gankit sweep --resume DIR`` continues them. A second signal is forwarded
too (the runs then stop at once, keeping their last checkpoint). Each job
also gets SIGINT when the sweep process dies (Linux: ``PR_SET_PDEATHSIG``),
so even a sweep killed with SIGKILL leaves its runs checkpointed and
resumable, not orphaned.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from gankit.runs.sweep import FINAL, Job, Sweep, discover_run_dir, relative, write_sweep

POLL_SECONDS = 0.2
EXIT_STATUS = {0: "finished", 3: "diverged", 130: "interrupted", 143: "interrupted"}


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def job_threads(parallel: int) -> int:
    """Threads per job: cores // jobs, at least 1, and never more than an OMP_NUM_THREADS already set."""
    threads = max(1, available_cores() // parallel)
    try:
        return max(1, min(threads, int(os.environ["OMP_NUM_THREADS"])))
    except (KeyError, ValueError):
        return threads


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:
        return 0


def gpu_devices() -> list[str]:
    """The GPUs a job may be given: CUDA_VISIBLE_DEVICES's entries when set, else 0..N-1."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    return [str(i) for i in range(gpu_count())]


def _die_with_parent() -> None:
    """In the child, before exec: SIGINT when the sweep dies (even by SIGKILL), so the run saves and stops."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, int(signal.SIGINT))  # PR_SET_PDEATHSIG (Linux)
    except Exception:
        pass


def last_error(text: str) -> str | None:
    """The run's error: its last ``error:`` line, else the last line of a traceback, else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("# gankit sweep")]
    for line in reversed(lines):
        if line.startswith("error:"):
            return line[:400]
    return lines[-1][:400] if lines else None


def resumable(sweep: Sweep, job: Job) -> Path | None:
    """The run directory to continue with ``gankit run --resume``, or None to start the job afresh.

    Interrupted runs, runs the sweep lost track of (a killed sweep) and runs
    killed by a signal continue from their checkpoint; a run that failed with
    an error starts again.
    """
    if job.status == "failed" and (job.exit_code is None or job.exit_code >= 0):
        return None
    run_dir = sweep.run_dir(job) or discover_run_dir(sweep, job)
    if run_dir is not None and (run_dir / "checkpoints" / "last.pt").is_file():
        return run_dir
    return None


@dataclass
class Running:
    job: Job
    proc: subprocess.Popen
    log: IO
    log_start: int  # where this attempt's output begins in the log
    started: float
    before: set  # run directories that existed under the job's out_dir before it started
    slot: int


class Executor:
    def __init__(self, sweep: Sweep, parallel: int, say=None):
        self.sweep = sweep
        self.parallel = max(1, parallel)
        self.threads = job_threads(self.parallel)
        self.gpus = gpu_devices() if gpu_count() else []
        self.say = say or (lambda text: print(text, flush=True))
        self.signum: int | None = None
        self.received = self.forwarded = 0  # signals received, and forwarded to the running jobs
        self.running: dict[int, Running] = {}

    # -- signals: the first stops new jobs; each is forwarded to the running ones as SIGINT
    def _handle(self, signum, frame):
        self.signum = self.signum or signum
        self.received += 1

    def _forward(self) -> None:
        for r in self.running.values():
            if r.proc.poll() is None:
                try:
                    r.proc.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass

    # -- one job
    def _start(self, job: Job, slot: int) -> Running:
        sweep = self.sweep
        resume = resumable(sweep, job) if job.status != "pending" else None
        args = ["run", "--resume", str(resume)] if resume else ["run", sweep.recipe, *sweep.run_args(job)]
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads)}
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
        log_path = sweep.log_file(job)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        sweep.out_dir(job).mkdir(parents=True, exist_ok=True)
        log = open(log_path, "a", encoding="utf-8")
        job.attempts += 1
        log.write(f"# gankit sweep: attempt {job.attempts}, {time.strftime('%Y-%m-%d %H:%M:%S')}: gankit "
                  + " ".join(args) + "\n")
        log.flush()
        start = log.tell()
        cwd = sweep.cwd if Path(sweep.cwd).is_dir() else None
        before = set() if resume else {p for p in sweep.out_dir(job).glob("*/*")}  # a new run dir is the job's
        proc = subprocess.Popen([sys.executable, "-m", "gankit", *args], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True,
                                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        job.status, job.exit_code, job.error = "running", None, None
        job.started, job.ended, job.seconds = time.strftime("%Y-%m-%d %H:%M:%S"), None, None
        if resume:
            job.run_dir = relative(sweep, resume)
        elif job.attempts > 1:
            job.run_dir = None  # a fresh start makes a new run directory
        how = f"resumed from {resume}" if resume else "started"
        self.say(f"[{self._done()}/{len(sweep.jobs)}] {job.name} {how} (log: {log_path})")
        return Running(job, proc, log, start, time.monotonic(), before, slot)

    def _find_run_dir(self, r: Running) -> bool:
        if r.job.run_dir is None:
            found = discover_run_dir(self.sweep, r.job, exclude=r.before)
            if found is not None:
                r.job.run_dir = relative(self.sweep, found)
                return True
        return False

    def _finish(self, r: Running, code: int) -> None:
        job = r.job
        r.log.close()
        self._find_run_dir(r)
        job.exit_code = code
        job.seconds = round(time.monotonic() - r.started, 1)
        job.ended = time.strftime("%Y-%m-%d %H:%M:%S")
        job.status = EXIT_STATUS.get(code, "interrupted" if self.signum and code < 0 else "failed")
        if job.status == "failed":
            with open(self.sweep.log_file(job), encoding="utf-8", errors="replace") as f:
                f.seek(r.log_start)
                error = last_error(f.read())
            if code < 0:
                error = f"killed by {signal.Signals(-code).name}" + (f" (last output: {error})" if error else "")
            job.error = error or f"exit code {code}"
        where = f" -> {self.sweep.run_dir(job)}" if job.run_dir else ""
        why = f": {job.error}" if job.error else ""
        self.say(f"[{self._done()}/{len(self.sweep.jobs)}] {job.name} {job.status} in {job.seconds:.0f} s{where}{why}")

    def _done(self) -> int:
        return sum(j.status in FINAL or j.status == "failed" for j in self.sweep.jobs)

    # -- the loop
    def run(self) -> int:
        sweep = self.sweep
        todo = [j for j in sweep.jobs if j.status not in FINAL]
        write_sweep(sweep)
        hardware = f"GPUs {','.join(self.gpus)}, one per job" if self.gpus else f"OMP_NUM_THREADS={self.threads} each"
        self.say(f"{len(todo)} of {len(sweep.jobs)} runs to do, {self.parallel} at a time ({hardware}); "
                 f"sweep directory {sweep.dir}")
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._handle)
        try:
            while (todo and self.signum is None) or self.running:
                changed = False
                while self.forwarded < self.received:  # each signal once: a second stops the runs at once
                    self._forward()
                    self.forwarded += 1
                while todo and self.signum is None and len(self.running) < self.parallel:
                    slot = min(set(range(self.parallel)) - set(self.running))
                    self.running[slot] = self._start(todo.pop(0), slot)
                    changed = True
                for slot, r in list(self.running.items()):
                    code = r.proc.poll()
                    if code is None:
                        changed |= self._find_run_dir(r)
                        continue
                    self._finish(r, code)
                    del self.running[slot]
                    changed = True
                if changed:
                    write_sweep(sweep)
                time.sleep(POLL_SECONDS)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for r in self.running.values():  # only on an unexpected error in this loop
                r.proc.send_signal(signal.SIGINT)
            write_sweep(sweep)
        return self._summary()

    def _summary(self) -> int:
        counts = self.sweep.counts()
        order = ("finished", "failed", "interrupted", "diverged", "pending", "running")
        text = ", ".join(f"{counts.get(s, 0)} {s}" for s in order if counts.get(s) or s in order[:3])
        if self.signum is not None:
            self.say(f"sweep stopped ({signal.Signals(self.signum).name}): {text}; continue it with: "
                     f"gankit sweep --resume {self.sweep.dir}")
            return 128 + self.signum
        self.say(f"sweep {self.sweep.name}: {text}; compare with: gankit compare {self.sweep.dir}")
        if counts.get("failed"):
            self.say(f"the failed runs' output is in {self.sweep.dir / 'logs'}")
            return 1
        return 0


def run_sweep(sweep: Sweep, parallel: int) -> int:
    """Run every job not yet finished; the exit code: 0 all finished, 1 some failed, 128+signal when stopped."""
    return Executor(sweep, parallel).run()
