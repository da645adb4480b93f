"""Shared by the whole suite: a real redis-server (installed by scripts/test.sh), and the drills' report."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


class RedisServer:
    """A redis-server on loopback with AOF and ``appendfsync always``; can be killed -9 and restarted."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes",
             # values stay readable on disk and in DUMP, so the erasure tests' byte scans can find them
             "--rdbcompression", "no", "--aof-use-rdb-preamble", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # SIGKILL: no chance to flush anything
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run the tests with `bash scripts/test.sh`, which installs it")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


_REPORTS: list[str] = []


@pytest.fixture
def drill_report():
    """Call with one line (what a drill measured: throughput, recovery times); printed at the end of the run."""
    return _REPORTS.append


def pytest_terminal_summary(terminalreporter) -> None:
    if _REPORTS:
        terminalreporter.section("drills: what they measured on this machine")
        for line in _REPORTS:
            terminalreporter.write_line(line)
