"""The package's layering (the import-linter contracts in pyproject.toml) holds, the contracts catch a violation,
and no module grows past ~300 lines without saying why at its top."""

import shutil
import subprocess
import sys
from pathlib import Path

from tests import REPO_ROOT

LINT = Path(sys.executable).with_name("lint-imports")
MAX_LINES = 300


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_every_contract_is_kept() -> None:
    result = _lint(REPO_ROOT)
    assert result.returncode == 0 and "0 broken" in result.stdout, result.stdout + result.stderr


def test_the_contracts_catch_an_upward_import_and_a_cycle(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / "tutor_cluster", tmp_path / "tutor_cluster",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / "tutor_cluster" / "config" / "settings.py").open("a") as f:
        f.write("\nfrom tutor_cluster.api import app as _upward  # noqa\n")  # config reaching up to the API
    with (tmp_path / "tutor_cluster" / "routing" / "events.py").open("a") as f:
        f.write("\nfrom tutor_cluster.routing import router as _cycle  # noqa\n")  # router → events → router
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "turn flows down" in result.stdout and "No import cycles" in result.stdout
    assert "4 broken" in result.stdout, result.stdout  # layers, HTTP below the API, Ray in config, the cycle


def test_modules_stay_small_or_say_why() -> None:
    big = []
    for path in sorted((REPO_ROOT / "tutor_cluster").rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_LINES and not any(line.startswith("# size:") for line in lines[:15]):
            big.append(f"{path.relative_to(REPO_ROOT)} ({len(lines)} lines)")
    assert not big, f"split these, or give a '# size: <reason>' line near the top: {big}"
