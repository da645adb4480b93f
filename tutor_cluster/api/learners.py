"""The learner routes (``/v1/learners``): registration, views of learner memory, preferences, the next exercise,
the audit trail of who accessed them, export and erasure."""

from __future__ import annotations

from fastapi import APIRouter, Header, Path, Query, Request, Response

from tutor_cluster.api.authz import allow
from tutor_cluster.api.protocol import ERRORS, ID_PATTERN, AuditRecord, AuditTrail, LearnerView
from tutor_cluster.learner.context import Preferences
from tutor_cluster.learner.policies import Recommendation
from tutor_cluster.turns.learners import LearnerService
from tutor_cluster.turns.rights import LearnerRights
from tutor_cluster.turns.rights_types import (  # the HTTP shapes of the rights routes, as the service has them
    ConsentChange,
    ConsentView,
    ErasureReceipt,
    LearnerExport,
    Registered,
    Registration,
)


def routes(learners: LearnerService, rights: LearnerRights | None) -> APIRouter:
    router = APIRouter(prefix="/v1/learners", tags=["learners"])
    learner_id_path = Path(pattern=ID_PATTERN, description="The learner.")
    idempotency = Header(default=None, pattern=ID_PATTERN, description="Retry with the same key: applied once.")

    if rights is not None:
        @router.post("", response_model=Registered, status_code=201, responses=ERRORS,
                     dependencies=[allow("POST /v1/learners")])
        async def register(body: Registration, http: Request, response: Response,
                           idempotency_key: str | None = idempotency) -> Registered:
            """Register a learner: their personal data goes, encrypted, into the vault of their home region; the
            answer is the opaque id every other route takes (a retry with the same Idempotency-Key: 200, same id)."""
            registered, created = await rights.register(http.state.principal, body, idempotency_key)
            response.status_code = 201 if created else 200
            return registered

        @router.get("/{learner_id}/consent", response_model=ConsentView, responses=ERRORS,
                    dependencies=[allow("GET /v1/learners/{learner_id}/consent")])
        async def consent(http: Request, learner_id: str = learner_id_path) -> ConsentView:
            """The consent scopes in force (tutoring, analytics, model_improvement) and every decision recorded."""
            return await rights.consent(http.state.principal, learner_id)

        @router.put("/{learner_id}/consent", response_model=ConsentView, responses=ERRORS,
                    dependencies=[allow("PUT /v1/learners/{learner_id}/consent")])
        async def change_consent(body: ConsentChange, http: Request, learner_id: str = learner_id_path
                                 ) -> ConsentView:
            """Grant or revoke scopes. Below the consent age only a linked guardian (with how their consent was
            verified) or the school (`school_authorization`) may; older learners decide their own."""
            return await rights.change_consent(http.state.principal, learner_id, body)

        @router.get("/{learner_id}/export", response_model=LearnerExport, responses=ERRORS,
                    dependencies=[allow("GET /v1/learners/{learner_id}/export")])
        async def export(http: Request, learner_id: str = learner_id_path) -> LearnerExport:
            """Everything kept about the learner — personal data, memory, the audit records about them — as one
            JSON document (GDPR Art. 20)."""
            return await rights.export(http.state.principal, learner_id)

        @router.delete("/{learner_id}", response_model=ErasureReceipt, responses=ERRORS,
                       dependencies=[allow("DELETE /v1/learners/{learner_id}")])
        async def erase(http: Request, learner_id: str = learner_id_path) -> ErasureReceipt:
            """Erase the learner: personal data and key (vault), memory, class and guardian links; pseudonymous
            rows about them become unlinkable. Idempotent (a repeat returns the receipt); resumed after a crash."""
            return await rights.erase(http.state.principal, learner_id)

    @router.get("/{learner_id}", response_model=LearnerView, responses=ERRORS,
                dependencies=[allow("GET /v1/learners/{learner_id}")])
    async def get_learner(http: Request, learner_id: str = learner_id_path) -> LearnerView:
        """Mastery per skill, misconceptions, preferences and recent turns (learners of the key's tenant only)."""
        return await learners.learner(http.state.principal, learner_id)

    @router.patch("/{learner_id}/preferences", response_model=LearnerView, responses=ERRORS,
                  dependencies=[allow("PATCH /v1/learners/{learner_id}/preferences")])
    async def patch_preferences(body: Preferences, http: Request, learner_id: str = learner_id_path,
                                idempotency_key: str | None = idempotency) -> LearnerView:
        """Set learning style, pace or language (fields sent replace stored ones; null clears)."""
        return await learners.set_preferences(http.state.principal, learner_id, body, idempotency_key)

    @router.get("/{learner_id}/next-exercise", response_model=Recommendation, responses=ERRORS,
                dependencies=[allow("GET /v1/learners/{learner_id}/next-exercise")])
    async def next_exercise(http: Request, learner_id: str = learner_id_path) -> Recommendation:
        """The exercise to do next, by the configured policy (default: lowest unmastered skill)."""
        return await learners.next_exercise(http.state.principal, learner_id)

    @router.get("/{learner_id}/audit", response_model=AuditTrail, responses=ERRORS,
                dependencies=[allow("GET /v1/learners/{learner_id}/audit")])
    async def audit(http: Request, learner_id: str = learner_id_path,
                    limit: int = Query(default=100, ge=1, le=1000, description="At most this many, newest first."),
                    ) -> AuditTrail:
        """Who accessed the learner's data — actor key, role, action, what, purpose, when — newest first (FERPA
        §99.32's record of disclosures). The learner appears in it only as a keyed pseudonym."""
        records = await learners.audit_trail(http.state.principal, learner_id, limit)
        return AuditTrail(records=[AuditRecord.model_validate(r) for r in records])

    return router
