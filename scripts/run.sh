#!/usr/bin/env bash
# Set up (idempotent) and run tutor-cluster locally on embedded defaults:
# local Ray on 127.0.0.1, the bundled SmolLM2 on the vLLM CPU engine. Ctrl-C stops it.
# Extra arguments go to `tutor-cluster up` (e.g. --port 8100, --config my.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_USAGE_STATS_ENABLED=0 HF_HUB_OFFLINE=1
exec .venv/bin/tutor-cluster up "$@"
