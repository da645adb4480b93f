"""The HTTP routes of API v1 (FastAPI), closing over a :class:`GatewayService`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tutor_cluster.api.auth import Authenticator
from tutor_cluster.api.errors import ApiError, install_error_handlers
from tutor_cluster.api.gateway import (
    API_VERSION,
    ERRORS,
    LEARNER_ID_PATTERN,
    OPENAI_ERRORS,
    GatewayService,
)
from tutor_cluster.api.middleware import GatewayMiddleware
from tutor_cluster.api.protocol import (
    ChatCompletionRequest,
    LearnerView,
    ModelCard,
    ModelList,
    TurnRequest,
    TurnResponse,
)
from tutor_cluster.knowledge.index import Filters
from tutor_cluster.knowledge.retriever import SearchResult
from tutor_cluster.learner.context import Preferences
from tutor_cluster.learner.policies import Recommendation
from tutor_cluster.telemetry.http import MetricsMiddleware


def build_fastapi(service: GatewayService) -> FastAPI:
    """The HTTP app; its routes close over ``service``."""
    settings = service.settings
    app = FastAPI(
        title="tutor-cluster", version="0.1.0", docs_url="/docs", redoc_url=None,
        description="Distributed AI tutoring API. Every route except /healthz and /readyz needs "
                    "'Authorization: Bearer <api key>'.",
    )
    app.add_middleware(GatewayMiddleware, authenticator=Authenticator(settings.auth),
                       max_body_bytes=settings.server.max_body_bytes)

    install_error_handlers(app, settings.server.request_timeout_s)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)  # added last: outermost, sees auth refusals

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the gateway process answers. No auth."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "a tier is not ready"}})
    async def readyz() -> JSONResponse:
        """Readiness: every tier (edge, router, each core engine) answers. No auth."""
        ok, tiers = await service.readiness()
        return JSONResponse({"status": "ready" if ok else "not_ready", "tiers": tiers}, status_code=200 if ok else 503)

    @app.post(f"/{API_VERSION}/tutor/turns", response_model=TurnResponse, responses=ERRORS, tags=["tutor"])
    async def tutor_turn(body: TurnRequest, http: Request) -> Any:
        """One tutoring turn. With ``stream: true`` the answer comes as server-sent events:
        ``route``, then ``delta`` (text) events, then ``done`` (the full TurnResponse) or ``error``."""
        result = await service.turn(body, http.state.principal)
        if isinstance(result, TurnResponse):
            return result
        return StreamingResponse(result, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post(f"/{API_VERSION}/chat/completions", responses=OPENAI_ERRORS, tags=["openai"])
    async def chat_completions(body: ChatCompletionRequest, http: Request) -> Any:
        """OpenAI-compatible chat completions through the same edge → router path."""
        result = await service.chat(body, http.state.principal)
        if isinstance(result, dict):
            return JSONResponse(result)
        return StreamingResponse(result, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.get(f"/{API_VERSION}/curriculum/search", response_model=SearchResult, responses=ERRORS, tags=["curriculum"])
    async def curriculum_search(
        q: str = Query(min_length=1, max_length=512, description="What to look for."),
        k: int = Query(default=5, ge=1, le=20, description="How many passages."),
        skill: str | None = Query(default=None, pattern=LEARNER_ID_PATTERN, description="Only this skill."),
        grade: int | None = Query(default=None, ge=0, le=13, description="Only this grade."),
        locale: str | None = Query(default=None, pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$", description="Language."),
    ) -> SearchResult:
        """Search the live curriculum version (the passages a core turn would be grounded on)."""
        if not q.strip():
            raise ApiError(422, "invalid_request", "q: must not be blank", "q")
        filters = Filters(skill=skill, grade=grade, lang=locale.split("-")[0] if locale else None)
        return await service.search(q, k, filters)

    @app.get(f"/{API_VERSION}/models", response_model=ModelList, responses=OPENAI_ERRORS, tags=["openai"])
    async def list_models() -> ModelList:
        """The model catalogue ('auto' lets the router choose)."""
        return service.models()

    @app.get(f"/{API_VERSION}/models/{{model_id:path}}", response_model=ModelCard, responses=OPENAI_ERRORS,
             tags=["openai"])
    async def get_model(model_id: str) -> ModelCard:
        """One model of the catalogue (404 ``model_not_found`` otherwise)."""
        return service.model(model_id)

    learner_id_path = Path(pattern=LEARNER_ID_PATTERN, description="The learner.")

    @app.get(f"/{API_VERSION}/learners/{{learner_id}}", response_model=LearnerView, responses=ERRORS,
             tags=["learners"])
    async def get_learner(learner_id: str = learner_id_path) -> LearnerView:
        """Mastery per skill, misconceptions, preferences and recent turns."""
        return await service.learners.learner(learner_id)

    @app.patch(f"/{API_VERSION}/learners/{{learner_id}}/preferences", response_model=LearnerView,
               responses=ERRORS, tags=["learners"])
    async def patch_preferences(body: Preferences, learner_id: str = learner_id_path,
                                idempotency_key: str | None = Header(default=None, pattern=LEARNER_ID_PATTERN)) -> LearnerView:
        """Set learning style, pace or language (fields sent replace stored ones; null clears)."""
        return await service.learners.set_preferences(learner_id, body, idempotency_key)

    @app.get(f"/{API_VERSION}/learners/{{learner_id}}/next-exercise", response_model=Recommendation,
             responses=ERRORS, tags=["learners"])
    async def next_exercise(learner_id: str = learner_id_path) -> Recommendation:
        """The exercise to do next, by the configured policy (default: lowest unmastered skill)."""
        return await service.learners.next_exercise(learner_id)

    @app.get(f"/{API_VERSION}/admin/stats", responses=ERRORS, tags=["admin"])
    async def admin_stats() -> dict[str, Any]:
        """Request counters per tier (admin scope): what reached the edge and each core engine; the live
        curriculum version the knowledge replica serves."""
        return await service.stats()

    return app
