"""Health and operations routes: ``/healthz`` (liveness), ``/readyz`` (every tier answers; no auth) and
``/v1/admin/stats`` (per-tier counters; admin scope)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tutor_cluster.api.protocol import ERRORS
from tutor_cluster.turns.learners import LearnerService


class Health:
    """Asks each tier whether it answers (handles injected: edge, router, knowledge; learner memory)."""

    def __init__(self, edge: Any, router: Any, learners: LearnerService, knowledge: Any = None) -> None:
        self._edge, self._router, self._learners, self._knowledge = edge, router, learners, knowledge

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
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
        """Readiness: every tier (edge, router, each core engine) answers. No auth."""
        ok, tiers = await health.readiness()
        return JSONResponse({"status": "ready" if ok else "not_ready", "tiers": tiers}, status_code=200 if ok else 503)

    @router.get("/v1/admin/stats", responses=ERRORS, tags=["admin"])
    async def admin_stats() -> dict[str, Any]:
        """Request counters per tier (admin scope): what reached the edge and each core engine; the live
        curriculum version the knowledge replica serves."""
        return await health.stats()

    return router
