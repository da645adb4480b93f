"""Health and operations routes: ``/healthz`` (liveness), ``/readyz`` (every tier answers; no auth) and
``/v1/admin/stats`` (per-tier counters; admin scope)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tutor_cluster.api.authz import allow
from tutor_cluster.api.protocol import ERRORS
from tutor_cluster.turns.learners import LearnerService

#: Seconds a readiness answer is reused: /readyz needs no auth, so it must not let anyone drive every tier.
READY_CACHE_S = 1.0


class Health:
    """Asks each tier whether it answers (handles injected: edge, router, knowledge; learner memory)."""

    def __init__(self, edge: Any, router: Any, learners: LearnerService, knowledge: Any = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._edge, self._router, self._learners, self._knowledge = edge, router, learners, knowledge
        self._clock = clock
        self._ready: tuple[float, tuple[bool, dict[str, Any]]] | None = None
        self._probing = asyncio.Lock()

    def _fresh(self) -> tuple[bool, dict[str, Any]] | None:
        if self._ready is not None and self._clock() - self._ready[0] < READY_CACHE_S:
            return self._ready[1]
        return None

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether every tier answers: asked at most once per READY_CACHE_S, however many callers ask."""
        if (cached := self._fresh()) is not None:
            return cached
        async with self._probing:  # concurrent callers wait for one probe
            if (cached := self._fresh()) is not None:
                return cached
            result = await self._probe()
            self._ready = (self._clock(), result)
            return result

    async def _probe(self) -> tuple[bool, dict[str, Any]]:
        tiers: dict[str, Any] = {}
        try:
            tiers["edge"] = bool(await asyncio.wait_for(self._edge.ready.remote(), 5))
        except Exception:  # noqa: BLE001 - not ready, whatever the cause
            tiers["edge"] = False
        try:
            tiers["core"] = await asyncio.wait_for(self._router.ready.remote(), 10)
            tiers["router"] = True
        except Exception:  # noqa: BLE001
            tiers["router"], tiers["core"] = False, {}
        try:
            tiers["memory"] = await asyncio.wait_for(self._learners.ready(), 5)
        except Exception:  # noqa: BLE001
            tiers["memory"] = False
        ok = (tiers["edge"] and tiers["router"] and tiers["memory"] and bool(tiers["core"])
              and all(tiers["core"].values()))
        return ok, tiers

    async def stats(self) -> dict[str, Any]:
        """Counters of the tiers (of the replicas these calls reach)."""
        out = {"edge": await self._edge.stats.remote(), "core": await self._router.engine_stats.remote(),
               "memory": await self._learners.stats()}
        if self._knowledge is not None:
            out["knowledge"] = await self._knowledge.status.remote()
        return out


def routes(health: Health) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the gateway process answers. No auth."""
        return {"status": "ok"}

    @router.get("/readyz", tags=["health"], responses={503: {"description": "a tier is not ready"}})
    async def readyz() -> JSONResponse:
        """Readiness: every tier (edge, router, each core engine) answers. No auth; answered from a probe at most
        one second old."""
        ok, tiers = await health.readiness()
        return JSONResponse({"status": "ready" if ok else "not_ready", "tiers": tiers}, status_code=200 if ok else 503)

    @router.get("/v1/admin/stats", responses=ERRORS, tags=["admin"], dependencies=[allow("GET /v1/admin/stats")])
    async def admin_stats() -> dict[str, Any]:
        """Request counters per tier (admin scope): what reached the edge and each core engine; the live
        curriculum version the knowledge replica serves."""
        return await health.stats()

    return router
