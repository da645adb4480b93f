"""The tutor-cluster command: exit codes and one-line errors (no Ray needed)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest


def _cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})}, input=stdin)


def test_status_and_down_when_not_running(tmp_path) -> None:
    env = {"TUTOR_STATE_DIR": str(tmp_path)}
    status = _cli("status", env=env)
    assert status.returncode == 3 and "not running" in status.stdout
    down = _cli("down", env=env)
    assert down.returncode == 0 and "not running" in down.stdout


def test_up_refuses_a_port_in_use_without_starting_ray(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = _cli("up", "--port", str(port), env={"TUTOR_STATE_DIR": str(tmp_path)})
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and f"127.0.0.1:{port} is in use" in proc.stderr


@pytest.mark.parametrize("args", [["up", "--port", "70000"], ["up", "--port", "x"], ["nonsense"],
                                  ["config", "check"]])
def test_bad_arguments_exit_2_with_one_line(args: list[str], tmp_path) -> None:
    proc = _cli(*args, env={"TUTOR_STATE_DIR": str(tmp_path)})
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1


def test_keys_new_prints_a_hash_that_matches_the_key() -> None:
    out = _cli("keys", "new", "--id", "k").stdout
    key = out.split("key (shown once): ")[1].split()[0]
    digest = _cli("keys", "hash", stdin=key + "\n").stdout.strip()
    assert len(digest) == 64 and f"sha256: {digest}" in out


def test_policies_lists_rules() -> None:
    assert "rules" in _cli("policies").stdout.split()
