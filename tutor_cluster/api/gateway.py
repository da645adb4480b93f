"""The Gateway: the Serve ingress deployment of API v1. It builds the services over the tiers' handles and
serves the HTTP app (``api/app.py``); it never calls a model itself."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from ray import serve

from tutor_cluster import runtime
from tutor_cluster.api.app import build_fastapi, build_services
from tutor_cluster.config.settings import Settings
from tutor_cluster.learner.memory import LearnerMemory

runtime.bind_replica_grpc_on_loopback()  # a local service's replicas: gRPC on 127.0.0.1 only


@serve.deployment(name="gateway")
@serve.ingress()
class Gateway:
    """Serve ingress: builds the FastAPI app once the handles are injected."""

    def __init__(self, settings: Settings, edge: Any, router: Any, memory: LearnerMemory,
                 knowledge: Any = None) -> None:
        runtime.bind_replica_grpc_on_loopback()  # this class reaches the replica by value: see runtime
        self._services = build_services(settings, edge, router, memory, runtime.resolve_handle(knowledge))
        self._services.events.start()

    def __serve_build_asgi_app__(self) -> FastAPI:
        return build_fastapi(self._services)

    def __del__(self) -> None:  # Serve calls it when the replica shuts down: write buffered events
        self._services.events.close()
