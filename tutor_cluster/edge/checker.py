"""Where the symbolic work of a maths check runs: in worker processes under a hard budget, or inline.

:class:`ProcessChecker` (the default on a service) keeps a few long-lived workers
(:mod:`tutor_cluster.edge.check_worker`). Each job runs under a CPU-time limit the kernel enforces (``RLIMIT_CPU``)
and a memory limit (``RLIMIT_AS``); the caller also stops waiting after a wall-clock bound and kills the worker.
A worker that dies or is killed is replaced. So one check costs at most ``cpu_s`` (+1, the kernel's granularity)
seconds of CPU and ``wall_s`` seconds of waiting, whatever the input — the size estimate in
:mod:`tutor_cluster.edge.maths` refuses the known bombs long before that, this is what holds when it misses one.
:class:`InlineChecker` runs the same function in-process (unit tests; only the size estimate bounds it).
"""

from __future__ import annotations

import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from tutor_cluster.edge import check_worker, maths

#: Seconds a fresh worker may take to start (import sympy) before it is replaced.
START_TIMEOUT_S = 60.0


class CheckRefused(Exception):
    """The check did not finish within its budget. ``busy``: no worker was free in time (retry later); otherwise
    the input needed more CPU or memory than an answer may use."""

    def __init__(self, message: str, *, busy: bool = False) -> None:
        super().__init__(message)
        self.busy = busy


class Checker(Protocol):
    def grade(self, answer: str, expected: str, *, require_solved: bool = False, tolerance: float | None = None,
              misconceptions: tuple[str, ...] = ()) -> maths.Grade: ...

    def close(self) -> None: ...


class InlineChecker:
    """In the calling process: bounded only by the size estimate."""

    def grade(self, answer: str, expected: str, *, require_solved: bool = False, tolerance: float | None = None,
              misconceptions: tuple[str, ...] = ()) -> maths.Grade:
        return maths.grade(answer, expected, require_solved=require_solved, tolerance=tolerance,
                           misconceptions=misconceptions)

    def close(self) -> None:
        return None


class _Died(Exception):
    pass


class _Worker:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tutor_cluster.edge.check_worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=dict(env), close_fds=True)
        self.ready = False

    def _line(self, deadline: float, clock: Callable[[], float]) -> dict:
        assert self.proc.stdout is not None
        remaining = deadline - clock()
        if remaining <= 0 or not select.select([self.proc.stdout], [], [], remaining)[0]:
            raise TimeoutError
        line = self.proc.stdout.readline()
        if not line:
            raise _Died
        return json.loads(line)

    def wait_ready(self, deadline: float, clock: Callable[[], float]) -> None:
        if not self.ready:
            self._line(deadline, clock)
            self.ready = True

    def run(self, job: dict, deadline: float, clock: Callable[[], float]) -> dict:
        self.wait_ready(deadline, clock)
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise _Died from None
        return self._line(deadline, clock)

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001 - already gone
            pass


class ProcessChecker:
    """``workers`` processes; each check at most ``cpu_s`` s of CPU (kernel-enforced), ``memory_mb`` MiB, and
    ``wall_s`` s of waiting (a free worker included). ``env``: extra environment for the workers (tests raise the
    size bounds with it to prove the budget holds on its own)."""

    def __init__(self, *, workers: int = 2, cpu_s: int = 2, wall_s: float = 6.0, memory_mb: int = 1024,
                 env: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._cpu_s, self._wall_s, self._clock = cpu_s, wall_s, clock
        package_root = str(Path(maths.__file__).resolve().parents[2])
        self._env = {**os.environ, **(env or {}), check_worker.MEMORY_ENV: str(memory_mb),
                     "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.replaced = 0  # workers killed or dead and started again (for tests and stats)
        for _ in range(workers):
            self._idle.put(self._start())

    def _start(self) -> _Worker:
        w = _Worker(self._env)
        with self._lock:
            self._all.add(w)
        return w

    def _replace(self, w: _Worker) -> None:
        w.kill()
        with self._lock:
            self._all.discard(w)
            self.replaced += 1
            closed = self._closed
        if not closed:
            self._idle.put(self._start())

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Block until every idle worker has started (a replica calls it once, before it takes traffic)."""
        deadline = self._clock() + timeout_s
        workers = []
        while True:
            try:
                workers.append(self._idle.get_nowait())
            except queue.Empty:
                break
        for w in workers:
            try:
                w.wait_ready(deadline, self._clock)
                self._idle.put(w)
            except (TimeoutError, _Died):
                self._replace(w)

    def grade(self, answer: str, expected: str, *, require_solved: bool = False, tolerance: float | None = None,
              misconceptions: tuple[str, ...] = ()) -> maths.Grade:
        deadline = self._clock() + self._wall_s
        try:
            w = self._idle.get(timeout=self._wall_s)
        except queue.Empty:
            raise CheckRefused("every answer checker is busy; try again in a moment", busy=True) from None
        job = {"answer": answer, "expected": expected, "require_solved": require_solved, "tolerance": tolerance,
               "misconceptions": list(misconceptions), "cpu_s": self._cpu_s}
        try:
            reply = w.run(job, deadline, self._clock)
        except TimeoutError:
            self._replace(w)
            raise CheckRefused(f"checking did not finish within {self._wall_s} s", busy=True) from None
        except _Died:
            self._replace(w)
            raise CheckRefused("checking it needed more time or memory than an answer may use") from None
        self._idle.put(w)
        if "ok" in reply:
            ok = reply["ok"]
            return maths.Grade(maths.MathVerdict(ok["correct"], ok["normalised"], ok["solved"]),
                               tuple(ok["misconceptions"]))
        if reply["error"] == "limit":
            raise maths.MathLimitError(reply["message"])
        raise maths.MathInputError(reply["message"])

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
        for w in workers:
            w.kill()
