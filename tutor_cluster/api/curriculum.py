"""``GET /v1/curriculum/search``: the passages a core turn would be grounded on, from the live curriculum."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query
from ray.exceptions import RayError
from ray.serve.exceptions import BackPressureError

from tutor_cluster.api.authz import allow
from tutor_cluster.api.protocol import ERRORS, ID_PATTERN
from tutor_cluster.errors import InvalidInput, NotFound, Unavailable
from tutor_cluster.knowledge.index import Filters
from tutor_cluster.knowledge.retriever import SearchResult
from tutor_cluster.turns.answers import overloaded

#: Seconds a client should wait before retrying a search the knowledge tier could not answer.
RETRY_AFTER_S = 5


async def search(knowledge: Any, query: str, k: int, filters: Filters, timeout_s: float) -> SearchResult:
    """A search on the knowledge tier (a Serve handle); its failures are domain errors."""
    if knowledge is None:
        raise NotFound("curriculum search is off (knowledge.enabled: false)")
    try:
        return await asyncio.wait_for(knowledge.search.remote(query, k, filters), timeout_s)
    except Unavailable as exc:
        exc.retry_after_s = exc.retry_after_s or RETRY_AFTER_S
        raise
    except BackPressureError as exc:
        raise overloaded(exc) from None
    except RayError as exc:
        raise Unavailable(f"the knowledge tier failed: {type(exc).__name__}", kind="curriculum_unavailable",
                          retry_after_s=RETRY_AFTER_S) from None


def routes(knowledge: Any, timeout_s: float) -> APIRouter:
    router = APIRouter(tags=["curriculum"])

    @router.get("/v1/curriculum/search", response_model=SearchResult, responses=ERRORS,
                dependencies=[allow("GET /v1/curriculum/search")])
    async def curriculum_search(
        q: str = Query(min_length=1, max_length=512, description="What to look for."),
        k: int = Query(default=5, ge=1, le=20, description="How many passages."),
        skill: str | None = Query(default=None, pattern=ID_PATTERN, description="Only this skill."),
        grade: int | None = Query(default=None, ge=0, le=13, description="Only this grade."),
        locale: str | None = Query(default=None, pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$", description="Language."),
    ) -> SearchResult:
        """Search the live curriculum version (the passages a core turn would be grounded on)."""
        if not q.strip():
            raise InvalidInput("q: must not be blank", field="q")
        filters = Filters(skill=skill, grade=grade, lang=locale.split("-")[0] if locale else None)
        return await search(knowledge, q, k, filters, timeout_s)

    return router
