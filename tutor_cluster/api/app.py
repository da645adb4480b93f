"""The HTTP app of API v1: the services a gateway replica runs, and the FastAPI app that mounts one router per
route family (tutor turns, OpenAI chat/models, learners, curriculum, health/admin) behind one middleware stack."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from tutor_cluster.access.policy import Access
from tutor_cluster.access.relations import Relations, open_relations
from tutor_cluster.api import classes, curriculum, health, learners, openai, tutor
from tutor_cluster.api.auth import Authenticator
from tutor_cluster.api.errors import install_error_handlers
from tutor_cluster.api.forwarding import RegionForwarder, install_region_handler
from tutor_cluster.api.middleware import GatewayMiddleware
from tutor_cluster.api.ratelimit import RateLimiter
from tutor_cluster.audit.log import AuditLog, open_audit
from tutor_cluster.config.settings import Settings
from tutor_cluster.learner.memory import LearnerMemory
from tutor_cluster.privacy import PseudonymKeys
from tutor_cluster.telemetry.events import EventSink
from tutor_cluster.telemetry.http import MetricsMiddleware
from tutor_cluster.telemetry.metrics import Metrics
from tutor_cluster.turns.chat import ChatService
from tutor_cluster.turns.learners import LearnerService
from tutor_cluster.turns.recorder import TurnRecorder
from tutor_cluster.turns.rights import LearnerRights
from tutor_cluster.turns.service import Tiers, TurnService
from tutor_cluster.vault.backends import open_vault
from tutor_cluster.vault.crypto import KeyEncryptionKeys

log = logging.getLogger(f"ray.serve.{__name__}")


@dataclass
class Services:
    """What a gateway replica serves with: the turn and chat services, learner memory, health, telemetry."""

    settings: Settings
    turns: TurnService
    chat: ChatService
    learners: LearnerService
    health: health.Health
    knowledge: Any
    metrics: Metrics
    events: EventSink
    relations: Relations | None = None
    rights: LearnerRights | None = None
    forwarder: RegionForwarder | None = None
    created: int = field(default_factory=lambda: int(time.time()))


def build_services(settings: Settings, edge: Any, router: Any, memory: LearnerMemory | None, knowledge: Any = None,
                   *, metrics: Metrics | None = None, pseudonyms: PseudonymKeys | None = None,
                   keks: KeyEncryptionKeys | None = None, clock: Callable[[], float] = time.time,
                   forwarder: RegionForwarder | None = None) -> Services:
    """The services over the tiers' handles (Serve handles in the app; anything with the same methods in tests).
    ``pseudonyms``, ``keks``: the pseudonym secrets and the vault's key-encryption keys (default: read from
    their files; missing → refuses to start). ``clock``: what "today" is for ages and consent (tests fix it).
    ``forwarder``: how requests for other regions' learners are refused or forwarded (default: over HTTP)."""
    metrics = metrics or Metrics()
    events = EventSink(settings.telemetry.events)
    privacy = settings.privacy
    relations = open_relations(settings.learner.store) if memory is not None else None
    pseudonyms = pseudonyms or PseudonymKeys.load(privacy.keys_path())
    audit = AuditLog(open_audit(privacy)) if privacy.audit_enabled and memory is not None else None
    vault = open_vault(privacy, keks or KeyEncryptionKeys.load(privacy.kek_path())) if memory else None
    learner_service = LearnerService(settings, memory, Access(relations), audit, pseudonyms=pseudonyms, vault=vault,
                                     clock=clock)
    rights = LearnerRights(learner_service, vault, relations, clock=clock) if vault is not None else None
    tiers = Tiers(settings, edge, router, learner_service, knowledge, TurnRecorder(metrics, events, pseudonyms))
    return Services(settings=settings, turns=TurnService(tiers), chat=ChatService(tiers), learners=learner_service,
                    health=health.Health(edge, router, learner_service, knowledge), knowledge=knowledge,
                    metrics=metrics, events=events, relations=relations, rights=rights,
                    forwarder=forwarder or RegionForwarder(settings))


def turn_bound_s(settings: Settings) -> float:
    """How long after a learner is blocked a turn that passed its checks before may still write their memory:
    the request's deadline covers the edge, and the memory write (before any answer) has its own."""
    return settings.server.request_timeout_s + settings.learner.call_timeout_s


async def _resume_erasures(rights: LearnerRights, settings: Settings, clock: Callable[[], float]) -> None:
    """Finish pending erasures: at start those a crash interrupted, then every
    ``privacy.erasure_resume_interval_s`` those begun longer ago than a turn may take (:func:`turn_bound_s`):
    the retention sweep's and those a crash left behind."""
    at_start = True
    while True:
        try:
            if n := await rights.resume_pending(clock() - turn_bound_s(settings), at_start=at_start):
                log.info("finished %d pending erasure(s)", n)
        except Exception as exc:  # noqa: BLE001 - the next round (or a repeat DELETE) resumes it; serve meanwhile
            log.warning("pending erasures not finished yet: %s: %s", type(exc).__name__, exc)
        at_start = False
        await asyncio.sleep(settings.privacy.erasure_resume_interval_s)


def build_fastapi(services: Services) -> FastAPI:
    """The HTTP app; its routes close over ``services``."""
    settings = services.settings
    timeout = settings.server.request_timeout_s

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # an erasure a crash interrupted is finished in the background once the replica serves
        task = (asyncio.create_task(_resume_erasures(services.rights, settings, services.learners.clock))
                if services.rights else None)
        yield
        if task is not None and not task.done():
            task.cancel()

    app = FastAPI(
        lifespan=lifespan, title="tutor-cluster", version="0.1.0", docs_url="/docs", redoc_url=None,
        description="Distributed AI tutoring API. Every route except /healthz and /readyz needs "
                    "'Authorization: Bearer <api key>'.",
    )
    app.add_middleware(GatewayMiddleware, authenticator=Authenticator(settings.auth),
                       max_body_bytes=settings.server.max_body_bytes, limiter=RateLimiter(
                           settings.limits, {k.id: k.rate for k in settings.auth.api_keys if k.rate}),
                       region=settings.privacy.region if settings.regions else None)
    install_error_handlers(app, timeout)
    install_region_handler(app, services.forwarder or RegionForwarder(settings))
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)  # added last: outermost, sees auth refusals
    app.include_router(health.routes(services.health))
    app.include_router(tutor.routes(services.turns, timeout))
    app.include_router(openai.routes(services.chat, settings.catalogue, services.created, timeout))
    app.include_router(curriculum.routes(services.knowledge, timeout))
    app.include_router(learners.routes(services.learners, services.rights))
    if services.relations is not None:
        app.include_router(classes.routes(services.relations, services.learners.check_home))
    return app
