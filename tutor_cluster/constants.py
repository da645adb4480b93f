"""Process-wide constants, each overridable by an environment variable, all in one place."""

from __future__ import annotations

import os
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:  # a bad env var is an operator error: say which one
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from exc


#: Where converted models and other caches live (never inside the repo).
CACHE_DIR = Path(_env("TUTOR_CACHE_DIR", str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tutor-cluster")))
#: Default settings file used by the CLI when none is given.
DEFAULT_CONFIG = _env("TUTOR_CONFIG", "")
#: Prefix for environment overrides of settings: TUTOR__SERVER__PORT=8100 sets server.port.
SETTINGS_ENV_PREFIX = "TUTOR__"
#: Serve application name and route prefix of the tutoring app.
APP_NAME = _env("TUTOR_APP_NAME", "tutor")
#: Largest request body the gateway reads, in bytes (bigger: 413).
MAX_BODY_BYTES = _env_int("TUTOR_MAX_BODY_BYTES", 64 * 1024)
#: Maths answers longer than this are refused before parsing.
MAX_MATH_CHARS = _env_int("TUTOR_MAX_MATH_CHARS", 200)
#: Deepest bracket nesting accepted in a maths answer.
MAX_MATH_DEPTH = _env_int("TUTOR_MAX_MATH_DEPTH", 20)
#: Largest integer exponent / literal magnitude accepted in a maths answer.
MAX_MATH_EXPONENT = _env_int("TUTOR_MAX_MATH_EXPONENT", 64)
#: Code answers longer than this are refused before parsing.
MAX_CODE_CHARS = _env_int("TUTOR_MAX_CODE_CHARS", 20_000)
#: Name of the bundled model's converted folder under CACHE_DIR.
BUNDLED_MODEL_NAME = "SmolLM2-135M-Instruct"
