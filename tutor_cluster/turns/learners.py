"""Learner memory as the turn service and the learner routes use it: durable writes per turn, learner views,
the prompt profile and routing features. A store outage or a missed deadline is :class:`Unavailable`."""
# size: one learner's resolution (region, access, vault, consent), memory, views and audit stay in one service

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ray.exceptions import RayError

from tutor_cluster import constants
from tutor_cluster.access.policy import Access
from tutor_cluster.audit.log import AuditLog
from tutor_cluster.config.settings import Settings
from tutor_cluster.edge.screening import redact_known
from tutor_cluster.edge.signals import EdgeResult
from tutor_cluster.errors import Forbidden, InvalidInput, NotFound, TutorError, Unavailable, WrongRegion
from tutor_cluster.identity import Principal, learner_key
from tutor_cluster.learner import policies as learner_policies
from tutor_cluster.learner.context import (
    LearnerContext,
    LearnerUpdate,
    Preferences,
    TurnSummary,
)
from tutor_cluster.learner.memory import LearnerMemory
from tutor_cluster.learner.policies import Recommendation
from tutor_cluster.learner.stores import StoreUnavailable
from tutor_cluster.privacy import PseudonymKeys
from tutor_cluster.routing.decisions import LearnerFeatures
from tutor_cluster.turns.types import LearnerView, MasteryChange, MemoryReceipt, SkillView, TurnRequest
from tutor_cluster.vault.store import ID_PREFIX, Vault, VaultEntry, home_region, vault_errors

log = logging.getLogger(__name__)

#: Seconds a client should wait before retrying when learner memory is unavailable.
MEMORY_RETRY_AFTER_S = 2


@dataclass(frozen=True)
class LearnerRef:
    """A learner the caller may touch, resolved once per request: the memory key and the keyed pseudonyms that
    every tier below carries instead of the id."""

    tenant: str
    learner_id: str
    key: str  # of the learner's memory (tenant-scoped)
    pseudonym: str  # under the current secret (and the learner's own key when registered)
    subjects: tuple[str, ...]  # the pseudonym under every secret version (to find older rows)
    entry: VaultEntry | None  # registered: their key material (never their personal data)
    scopes: frozenset[str] = frozenset()  # the consent scopes in force (privacy.default_scopes, grants, revocations)
    minor: bool = False  # below privacy.consent_age: only a guardian grants scopes

    def require(self, scope: str) -> None:
        """:class:`Forbidden` (403 ``consent_required``) unless the learner's consent covers ``scope``."""
        if scope not in self.scopes:
            who = "a guardian has" if self.minor else "the learner has"
            raise Forbidden(f"no consent for {scope!r}: nothing was stored or sent; {who} to grant it "
                            "(PUT /v1/learners/{id}/consent)", code="consent_required", field="learner_id")


class LearnerService:
    def __init__(self, settings: Settings, memory: LearnerMemory, access: Access | None = None,
                 audit: AuditLog | None = None, *, pseudonyms: PseudonymKeys, vault: Vault | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self._memory = memory
        self._access = access or Access(None)
        self._audit = audit
        self.pseudonyms = pseudonyms
        self.vault = vault
        self._next = learner_policies.get(settings.learner.next_exercise_policy)

    async def stats(self) -> list[dict[str, int]]:
        return [await self._memory_call(a.stats.remote()) for a in self._memory.actors]

    async def ready(self) -> bool:
        return bool(await self._memory_call(self._memory.actors[0].ping.remote()))

    async def _memory_call(self, ref: Any) -> Any:
        async def wait() -> Any:
            return await ref

        try:
            return await asyncio.wait_for(wait(), self.settings.learner.call_timeout_s)
        except TutorError as exc:  # a domain refusal from the memory tier (e.g. a quota): as it is
            cause = getattr(exc, "cause", None)  # Ray wraps it: raise the original, with its own attributes
            raise cause if isinstance(cause, TutorError) else exc from None
        except StoreUnavailable:  # the store refused before committing: nothing was written
            raise Unavailable("learner memory is unavailable (StoreUnavailable); nothing was written, retry shortly",
                              kind="memory_unavailable", retry_after_s=MEMORY_RETRY_AFTER_S) from None
        except (TimeoutError, RayError) as exc:  # the actor may still commit what it was sent
            raise Unavailable(f"learner memory did not answer in time ({type(exc).__name__}); the write may have been "
                              "applied: retry with the same turn_id (or Idempotency-Key) to apply it exactly once",
                              kind="memory_unavailable", retry_after_s=MEMORY_RETRY_AFTER_S) from None

    async def resolve(self, principal: Principal, learner_id: str) -> LearnerRef:
        """The learner, if the principal may touch it (role and relations: ``access/``) and it exists as far as
        registration demands (``privacy.registration``), else :class:`NotFound`. Built from the principal's
        tenant, never from the request: another tenant's learner is as unknown as one that never was (404, no
        existence oracle); so is one being erased. Another region's learner is :class:`WrongRegion` at once."""
        self.check_home(learner_id)
        await self._access.check_learner(principal, learner_id)
        tenant = principal.tenant
        key = learner_key(tenant, learner_id)
        entry, consents = (await self._vault_read(self.vault.lookup, tenant, learner_id) if self.vault is not None
                           else (None, {}))
        if entry is not None and entry.erasing or entry is None and (
                self.settings.privacy.registration == "required" or learner_id.startswith(ID_PREFIX)):
            # (an id of the registration's form is the vault's alone: once erased it never comes back)
            raise NotFound(f"unknown learner {learner_id!r}", field="learner_id")
        material = entry.learner_key if entry else None
        subjects = tuple(self.pseudonyms.pseudonym(tenant, learner_id, version=v, learner_key=material)
                         for v in self.pseudonyms.versions)
        if entry is None and self.vault is not None and await self._vault_read(self.vault.erasing, tenant,
                                                                               list(subjects)):
            raise NotFound(f"unknown learner {learner_id!r}", field="learner_id")  # being erased
        minor, scopes = self.consent_of(entry, consents)
        return LearnerRef(tenant, learner_id, key, subjects[0], subjects, entry, scopes, minor)

    def check_home(self, learner_id: str, field: str = "learner_id") -> None:
        """:class:`WrongRegion` for a registered id of another region; :class:`NotFound` for an unknown region."""
        if (home := home_region(learner_id)) not in (None, self.settings.privacy.region):
            if home in self.settings.region_names():
                raise WrongRegion(f"learner {learner_id!r}", home, field)
            raise NotFound(f"unknown learner {learner_id!r}", field=field)

    def consent_of(self, entry: VaultEntry | None, consents: dict[str, bool]) -> tuple[bool, frozenset[str]]:
        """(minor, scopes in force): a learner below ``privacy.consent_age`` starts with none, anyone else with
        ``privacy.default_scopes`` (an unregistered learner too: their age is unknown); recorded grants and
        revocations apply on top, the latest per scope."""
        minor = entry is not None and self.clock() < entry.minor_until
        scopes = set() if minor else set(self.settings.privacy.default_scopes)
        for scope, granted in consents.items():
            (scopes.add if granted else scopes.discard)(scope)
        return minor, frozenset(scopes)

    async def _known_learner(self, principal: Principal, learner_id: str) -> tuple[LearnerRef, LearnerContext]:
        ref = await self.resolve(principal, learner_id)
        return ref, await self._known(ref.key, learner_id)

    async def _known(self, key: str, learner_id: str) -> LearnerContext:
        ctx = await self._memory_call(self._memory.get(key))
        if ctx is None:
            raise NotFound(f"unknown learner {learner_id!r}", field="learner_id")
        return ctx

    def learner_view(self, ctx: LearnerContext) -> LearnerView:
        threshold = self.settings.learner.policy.mastery_threshold
        return LearnerView(
            learner_id=ctx.learner_id, version=ctx.version,
            skills={k: SkillView(mastery=v.mastery, attempts=v.attempts, correct=v.correct,
                                 mastered=v.mastery >= threshold) for k, v in ctx.skills.items()},
            misconceptions={k: v.model_dump() for k, v in ctx.misconceptions.items()},
            preferences=ctx.preferences.model_dump(exclude_none=True),
            recent=[t.model_dump() for t in ctx.recent], created_at=ctx.created_at, updated_at=ctx.updated_at,
        )

    async def _vault_read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A vault read: SQLite reads never wait for a writer (WAL), so they run on the event loop (no thread hop
        per request); a networked vault's (Redis) run off it."""
        with vault_errors():
            return await asyncio.to_thread(fn, *args) if self.vault.remote else fn(*args)

    async def without_known_pii(self, ref: LearnerRef, text: str) -> str:
        """``text`` with the registered learner's own names and e-mail addresses (from the vault) replaced, so
        they reach no tier, store, prompt or log (``edge.redact_pii``; other e-mails, phones and addresses are
        the edge's to redact)."""
        if ref.entry is None or self.vault is None or not self.settings.edge.redact_pii:
            return text
        profile = await self._vault_read(self.vault.profile, ref.entry) or {}
        terms = [profile.get(k) for k in ("display_name", "email", "guardian_email")]
        return redact_known(text, [t for t in terms if t])[0]

    async def mark_active(self, ref: LearnerRef) -> None:
        """Record a registered learner's activity in the vault (``privacy.retention.vault_days`` counts from it),
        at most once per ``VAULT_ACTIVITY_RESOLUTION_S``. A vault that cannot be written costs the turn nothing:
        the next turn records it (logged)."""
        if (ref.entry is None or self.vault is None
                or self.clock() - ref.entry.active_at < constants.VAULT_ACTIVITY_RESOLUTION_S):
            return
        try:
            with vault_errors():
                await asyncio.to_thread(self.vault.touch, ref.tenant, ref.learner_id, self.clock())
        except Unavailable as exc:
            log.warning("learner activity not recorded: %s", exc)

    async def audited(self, principal: Principal, ref: LearnerRef, *, action: str, resource: str,
                      route: str) -> None:
        """Record an access to the learner's data in the audit trail (durable before the caller answers)."""
        await self.audit_subject(principal, ref.pseudonym, action=action, resource=resource, route=route)

    async def audit_subject(self, principal: Principal, subject: str, *, action: str, resource: str,
                            route: str) -> None:
        """:meth:`audited` for a learner known only by their pseudonym (an erasure resumed after a crash)."""
        if self._audit is not None:
            await self._audit.record(principal, subject, action=action, resource=resource, route=route)

    async def check_access(self, principal: Principal, learner_id: str) -> None:
        """:class:`NotFound` unless the principal may touch the learner (whether or not they still exist)."""
        await self._access.check_learner(principal, learner_id)

    async def audit_records(self, ref: LearnerRef, limit: int) -> list[dict[str, Any]]:
        """Records about the learner, newest first ([] with the trail off)."""
        return [] if self._audit is None else await self._audit.about(ref.tenant, list(ref.subjects), limit)

    async def audit_trail(self, principal: Principal, learner_id: str, limit: int) -> list[dict[str, Any]]:
        """Who accessed the learner's data, newest first (for the roles ``access/rules.py`` allows; a learner
        unknown to the caller's tenant is 404, as on every learner route)."""
        ref, _ = await self._known_learner(principal, learner_id)
        if self._audit is None:
            raise NotFound("the audit trail is off (privacy.audit_enabled: false)", field="learner_id")
        records = await self.audit_records(ref, limit)
        await self.audited(principal, ref, action="read", resource="audit trail",  # who read whose trail
                           route="GET /v1/learners/{learner_id}/audit")
        return records

    async def context(self, ref: LearnerRef) -> LearnerContext | None:
        """The learner's memory, or None when nothing is stored (a registered learner before their first turn)."""
        return await self._memory_call(self._memory.get(ref.key))

    async def forget(self, key: str) -> bool:
        """Erase a learner's memory (store and actor cache) by memory key."""
        return bool(await self._memory_call(self._memory.forget(key)))

    async def learner(self, principal: Principal, learner_id: str) -> LearnerView:
        ref, ctx = await self._known_learner(principal, learner_id)
        view = self.learner_view(ctx)
        await self.audited(principal, ref, action="read", resource="learner memory",
                           route="GET /v1/learners/{learner_id}")
        return view

    async def set_preferences(self, principal: Principal, learner_id: str, prefs: Preferences,
                              key: str | None) -> LearnerView:
        ref = await self.resolve(principal, learner_id)  # one access check for the read and the write
        ref.require("tutoring")
        memory_key = ref.key
        if ref.entry is None:  # a registered learner may set preferences before a first turn; others must exist
            await self._known(memory_key, learner_id)
        # preference keys have their own namespace: an Idempotency-Key equal to some turn_id is another write
        turn_id = f"prefs:{key}" if key else f"prefs:{uuid.uuid4().hex}"
        body = hashlib.sha256(prefs.model_dump_json(exclude_unset=True).encode()).hexdigest()[:16]
        update = LearnerUpdate(turn_id=turn_id, preferences=prefs, body_hash=body)
        result = await self._memory_call(self._memory.apply(memory_key, update))
        if not result.applied and result.after.request_bodies.get(turn_id, body) != body:
            raise InvalidInput(f"Idempotency-Key {key!r} was used before with another body; send a new key for a "
                               "new change, or the same body to retry", field="Idempotency-Key",
                               code="idempotency_key_reused")
        await self.audited(principal, ref, action="write", resource="preferences",
                           route="PATCH /v1/learners/{learner_id}/preferences")
        return self.learner_view(result.after)

    async def next_exercise(self, principal: Principal, learner_id: str) -> Recommendation:
        ref, ctx = await self._known_learner(principal, learner_id)
        rec = self._next(ctx, self.settings.exercises, self.settings.learner.policy)
        await self.audited(principal, ref, action="read", resource="learner memory",
                           route="GET /v1/learners/{learner_id}/next-exercise")
        if rec is None:
            raise NotFound("every skill with exercises is mastered", field="learner_id")
        return rec

    @staticmethod
    def profile(ctx: LearnerContext | None) -> str | None:
        if ctx is None:
            return None
        parts = []
        if ctx.skills:
            parts.append("mastery " + ", ".join(f"{k} {v.mastery:.2f}" for k, v in sorted(ctx.skills.items())))
        if ctx.misconceptions:
            parts.append("misconceptions " + ", ".join(f"{k} x{v.count}" for k, v in ctx.misconceptions.items()))
        prefs = ctx.preferences.model_dump(exclude_none=True)
        if prefs:
            parts.append("preferences " + ", ".join(f"{k}={v}" for k, v in prefs.items()))
        return "; ".join(parts) or None

    @staticmethod
    def history(ctx: LearnerContext | None) -> list[str]:
        """What the learner wrote in the last turns (screened summaries): learner text, so never system prompt."""
        if ctx is None:
            return []
        return [t.summary[:80] for t in ctx.recent[-3:] if t.summary]

    @staticmethod
    def features(ctx: LearnerContext, skill: str | None) -> LearnerFeatures:
        state = ctx.skills.get(skill) if skill else None
        wrongs = sum(m.count for m in ctx.misconceptions.values() if skill is not None and m.skill == skill)
        return LearnerFeatures(mastery=state.mastery if state else None, attempts=state.attempts if state else 0,
                               misconceptions=wrongs)

    async def remember(self, key: str, body: TurnRequest, turn_id: str,
                        edge: EdgeResult) -> tuple[LearnerContext | None, LearnerContext, MemoryReceipt,
                                                   MasteryChange | None]:
        """Write the turn to learner memory (durable before the reply): graded outcome, misconceptions, summary.
        One actor call returns the context before and after."""
        sig = edge.signals
        check = sig.check
        graded = check is not None and check.correct is not None and sig.skill is not None
        refused = sig.injection and self.settings.edge.block_injection
        update = LearnerUpdate(
            turn_id=turn_id, skill=sig.skill if graded else None, correct=check.correct if graded else None,
            misconceptions=list(check.misconceptions) if check else [],
            hint_for=edge.reply.hint_from if edge.reply is not None and not refused else None,
            # a turn the injection guard refused is remembered as a turn, but its text is not kept
            summary=TurnSummary(turn_id=turn_id, at=time.time(), skill=sig.skill, intent=sig.intent,
                                correct=check.correct if check else None,
                                summary="" if refused else sig.text[:200]),
        )
        before, after, applied = await self._memory_call(self._memory.apply(key, update))
        change = None
        if graded and sig.skill in after.skills:
            policy = self.settings.learner.policy
            prior_state = before.skills.get(sig.skill) if before else None
            was = prior_state.mastery if prior_state else policy.params(sig.skill).prior
            now = after.skills[sig.skill].mastery
            change = MasteryChange(skill=sig.skill, before=was if applied else now, after=now,
                                   mastered=now >= policy.mastery_threshold, threshold=policy.mastery_threshold)
        return before, after, MemoryReceipt(version=after.version, applied=applied), change
