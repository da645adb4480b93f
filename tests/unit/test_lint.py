"""The code passes the project's lint rules (pyproject.toml [tool.ruff]): no unused or undefined names, sorted
imports. A failure lists each finding as path:line:col."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests import REPO_ROOT


def test_ruff_finds_nothing() -> None:
    ruff = Path(sys.executable).parent / "ruff"
    r = subprocess.run([str(ruff), "check", "--output-format", "concise", "tutor_cluster", "tests", "scripts"],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
