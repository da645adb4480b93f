#!/usr/bin/env bash
# Set up (idempotent, with test tools) and run the whole test suite: unit tests, then integration
# tests against a real service (`tutor-cluster up`: Ray, Serve, vLLM CPU engine, bundled model).
# Extra arguments go to pytest (e.g. -k edge, tests/edge).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
# A real redis-server for the learner-memory tests (the tests start and stop their own instances).
if ! command -v redis-server >/dev/null 2>&1; then
  echo "[test] installing redis-server"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server >/dev/null
fi
export RAY_USAGE_STATS_ENABLED=0 HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
exec .venv/bin/python -m pytest -p no:cacheprovider --timeout=900 "$@"
