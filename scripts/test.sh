#!/usr/bin/env bash
# Set up (idempotent, with test tools) and run the whole test suite, tier by tier: tests/unit (no servers),
# tests/service (real Redis, local Ray, Ray Data), tests/e2e (the real service: `tutor-cluster up` with Ray,
# Serve, the vLLM CPU engine and the bundled model).
#
#   bash scripts/test.sh                 # everything, drills included (what CI runs)
#   bash scripts/test.sh --fast          # the fast lane: unit + service tiers without the long drills
#   bash scripts/test.sh -k edge tests/unit/edge   # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
lane=()
if [ "${1:-}" = "--fast" ]; then
  shift
  lane=(tests/unit tests/service -m "not drill")
fi
bash scripts/setup.sh --dev
# Real servers for the tests (each test starts and stops its own instances): redis-server for learner memory
# and budgets, Prometheus (and promtool) for the metrics tests.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "[test] installing ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's package starts a system Prometheus on :9090; the tests run their own on loopback ports.
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || $SUDO pkill -x prometheus >/dev/null 2>&1 || true
fi
export RAY_USAGE_STATS_ENABLED=0 HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
exec .venv/bin/python -m pytest -p no:cacheprovider --timeout=900 --durations=25 "${lane[@]}" "$@"
