"""The Serve application with its GPU pool stood in for: a GPU cannot exist on our machines, so each catalogue
engine becomes a Serve deployment answering a fixed text in the LLMServer's SSE framing, under the deployment name
and with the deployment options (replicas, resources such as ``{core: 1}``) the real vLLM engine gets from the same
catalogue entry. Everything else is the real app (``tutor_cluster.app.builder.app_builder``). Deploy it from a
Serve config with ``import_path: tests.service.app.gpu_pool:app_builder``; the real engine is tested end to end in
tests/e2e."""

from __future__ import annotations

from typing import Any

from ray import serve

from tests.unit.stand_ins import FixedAnswer
from tutor_cluster import runtime
from tutor_cluster.app import builder
from tutor_cluster.config.catalogue import EngineConfig
from tutor_cluster.core.engine import engine_deployment_name

ANSWER = "Try a common denominator first."


class StandInEngine:
    """What the router calls on an engine replica: ``chat`` (streamed), ``check_health`` and ``stats``."""

    def __init__(self) -> None:
        runtime.bind_replica_grpc_on_loopback()  # as every deployment of the app does
        self._answer = FixedAnswer(ANSWER)

    async def chat(self, request: Any):  # noqa: ANN201 - an async generator of SSE chunks
        async for chunk in self._answer.remote(request):
            yield chunk

    def check_health(self) -> None:
        return None

    def stats(self) -> dict[str, int]:
        return {"chat_requests": self._answer.calls}


def stand_in_engine(name: str, engine: EngineConfig) -> Any:
    """The stand-in, named and placed as :func:`tutor_cluster.core.engine.build_engine_app` names and places."""
    deployment = serve.deployment(StandInEngine, name=engine_deployment_name(name))
    return deployment.options(**engine.deployment.serve_options()).bind()


def app_builder(args: dict[str, str]) -> Any:
    return builder.app_builder(args, engine_builder=stand_in_engine)
