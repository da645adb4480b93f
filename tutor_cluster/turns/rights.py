# size: registration, consent, export and erasure share one learner resolution, vault and audit trail
"""A learner's data rights, without HTTP: registration into the region's vault, consent (COPPA, GDPR Art. 8),
export of everything kept about them (GDPR Art. 20), and erasure (Art. 17) as a durable, resumable job.

Erasure, step by step (each recorded in the vault before the next, so a crash resumes where it stopped):

    blocked    the vault marks the learner: nothing resolves them any more (404 on every route)
    relations  class enrolments and guardian links removed
    audit      the erasure recorded in the disclosure trail (under the learner's pseudonym)
    vault      personal data and the learner's key deleted (overwritten on disk): crypto-shredding — their
               pseudonym can no longer be computed, so events, ledger and audit rows about them are unlinkable
    memory     learner memory deleted from the store and the actor's cache

The job is keyed by the learner's pseudonym under the service secret alone and keeps the raw id sealed only
until it completes; what stays is the receipt. The retention sweep (``privacy.retention.vault_days``) begins the
same job for a learner inactive too long (:func:`expire_learner`); gateway replicas finish it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from tutor_cluster.access.relations import CLASS_LEARNERS, GUARDIAN_LEARNERS, Relations
from tutor_cluster.config.privacy import CONSENT_SCOPES
from tutor_cluster.errors import Forbidden, InvalidInput, NotFound, WrongRegion
from tutor_cluster.identity import Principal, learner_key
from tutor_cluster.privacy import PseudonymKeys
from tutor_cluster.turns.learners import LearnerRef, LearnerService
from tutor_cluster.turns.rights_types import (
    AgeBand,
    ConsentChange,
    ConsentRecord,
    ConsentView,
    ErasureReceipt,
    LearnerExport,
    Registered,
    Registration,
)
from tutor_cluster.turns.types import AuditRecord
from tutor_cluster.vault.redis_store import RedisVault
from tutor_cluster.vault.store import ErasureJob, RegistrationConflict, Vault, vault_errors

T = TypeVar("T")

#: Erasure steps, in order.
STEPS = ("blocked", "relations", "audit", "vault", "memory")
#: Seconds a replica holds a pending erasure job it resumes (a job whose replica died is taken over after this).
CLAIM_S = 60.0
log = logging.getLogger(__name__)
ROUTE_ERASE = "DELETE /v1/learners/{learner_id}"


#: The youngest age of each band (with only a band, a learner counts as that age for consent).
BAND_FLOOR: dict[str, int] = {"under_13": 0, "13_15": 13, "16_17": 16, "adult": 18}
#: Who may record consent decisions, and how.
GUARDIAN_METHODS = frozenset({"signed_form", "credit_card", "phone_or_video_call", "government_id",
                              "knowledge_based"})


def job_refs(keys: PseudonymKeys, tenant: str, learner_id: str) -> list[str]:
    """An erasure job's keys: the learner's pseudonym under the service secret alone (each version)."""
    return [keys.pseudonym(tenant, learner_id, version=v) for v in keys.versions]


def expire_learner(vault: Vault | RedisVault, keys: PseudonymKeys, tenant: str, learner_id: str,
                   before: float) -> bool:
    """Begin the erasure of a learner inactive since ``before`` (``privacy.retention.vault_days``): blocked at
    once (nothing resolves them any more), the job recorded for a gateway replica to finish. False when a turn
    recorded meanwhile spared them, or they were being erased already (their job goes on). Idempotent."""
    entry = vault.entry(tenant, learner_id)
    if entry is None or not vault.block_inactive(tenant, learner_id, before):
        return False
    subject = keys.pseudonym(tenant, learner_id, version=keys.versions[0], learner_key=entry.learner_key)
    job = vault.begin_erasure(tenant, job_refs(keys, tenant, learner_id)[0], learner_id, subject,
                              {"receipt_id": uuid.uuid4().hex, "unlinkable": True, "reason": "retention"})
    if "blocked" not in job.steps and job.completed_at is None:
        vault.step_done(job, "blocked")
    return not entry.erasing


def age_band(birth: dt.date, today: dt.date) -> AgeBand:
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    return "under_13" if age < 13 else "13_15" if age < 16 else "16_17" if age < 18 else "adult"


def minor_until(birth: dt.date | None, band: str, consent_age: int) -> float:
    """Unix time from which the learner no longer needs a guardian's consent: their ``consent_age`` birthday;
    0 when they never did; infinity when only a band below the age is known."""
    if birth is None:
        return 0.0 if BAND_FLOOR[band] >= consent_age else float("inf")
    try:
        day = birth.replace(year=birth.year + consent_age)
    except ValueError:  # 29 February
        day = dt.date(birth.year + consent_age, 3, 1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()


class LearnerRights:
    """``after_step`` is called after each erasure step is recorded (fault-injection tests kill the process
    there)."""

    def __init__(self, learners: LearnerService, vault: Vault, relations: Relations | None, *,
                 clock: Callable[[], float] = time.time,
                 after_step: Callable[[str], None] | None = None) -> None:
        self._learners = learners
        self._vault = vault
        self._relations = relations
        self._region = learners.settings.privacy.region
        self._clock = clock
        self._after_step = after_step

    @staticmethod
    async def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A vault call off the event loop; its failures are 503 ``vault_unavailable``."""
        with vault_errors():
            return await asyncio.to_thread(fn, *args, **kwargs)

    # --- registration -----------------------------------------------------------------------------------------

    async def register(self, principal: Principal, body: Registration, idempotency_key: str | None
                       ) -> tuple[Registered, bool]:
        """Store the learner's personal data in the vault; returns the registration and whether it was new."""
        region = body.home_region or self._region
        if region != self._region:
            regions = self._learners.settings.region_names()
            if region in regions:  # their data goes into that region's vault, through its gateway
                raise WrongRegion(f"a learner of home_region {region!r}", region, "home_region")
            raise InvalidInput(f"home_region {region!r} is not a region of this deployment ({', '.join(regions)})",
                               field="home_region", code="unknown_region")
        today = dt.datetime.fromtimestamp(self._clock(), dt.timezone.utc).date()
        if body.birth_date is not None and body.birth_date > today:
            raise InvalidInput("birth_date is in the future", field="birth_date")
        band = age_band(body.birth_date, today) if body.birth_date else body.age_band
        if body.age_band is not None and band != body.age_band:
            raise InvalidInput(f"age_band {body.age_band!r} does not match birth_date (age band {band!r}); "
                               "send one of them", field="age_band")
        profile = {**body.model_dump(mode="json", exclude_none=True), "age_band": band, "home_region": region}
        request = (idempotency_key, body.model_dump_json()) if idempotency_key else None
        until = minor_until(body.birth_date, band, self._learners.settings.privacy.consent_age)
        try:
            learner_id, created_at, created = await self._call(
                self._vault.register, principal.tenant, region, profile, minor_until=until, request=request)
        except RegistrationConflict:
            raise InvalidInput(f"Idempotency-Key {idempotency_key!r} was used before with another body; send a new "
                               "key for a new learner", field="Idempotency-Key", code="idempotency_key_reused") from None
        ref = await self._learners.resolve(principal, learner_id)
        if created:
            await self._learners.audited(principal, ref, action="register", resource="personal data",
                                         route="POST /v1/learners")
        return Registered(learner_id=learner_id, region=region, age_band=band, created_at=created_at,
                          consent_required=ref.minor), created

    # --- consent ----------------------------------------------------------------------------------------------

    async def _existing(self, principal: Principal, learner_id: str) -> tuple[LearnerRef, Any]:
        """The learner and their memory (None before a first turn), if they exist: registered, or with memory."""
        ref = await self._learners.resolve(principal, learner_id)
        ctx = await self._learners.context(ref)
        if ref.entry is None and ctx is None:
            raise NotFound(f"unknown learner {learner_id!r}", field="learner_id")
        return ref, ctx

    def _consent_view(self, ref: LearnerRef, history: list[dict[str, Any]]) -> ConsentView:
        return ConsentView(minor=ref.minor, scopes={s: s in ref.scopes for s in CONSENT_SCOPES},
                           records=[ConsentRecord.model_validate(r) for r in history])

    async def consent(self, principal: Principal, learner_id: str) -> ConsentView:
        ref, _ = await self._existing(principal, learner_id)
        history = await self._call(self._vault.consent_history, ref.tenant, learner_id)
        return self._consent_view(ref, history)

    async def change_consent(self, principal: Principal, learner_id: str, change: ConsentChange) -> ConsentView:
        """Record grants and revocations. A minor's scopes are a guardian's to decide (with a verifiable
        ``method``), ``tutoring`` also the school's (``school_authorization``, by an institution admin); a learner
        at or above the consent age decides their own (``self``), and nobody else may."""
        ref, _ = await self._existing(principal, learner_id)
        role, method = principal.role, change.method
        if role != "learner" and not ref.minor:
            raise Forbidden("the learner is at or above the consent age and decides their own consent "
                            f"(privacy.consent_age {self._learners.settings.privacy.consent_age})",
                            code="learner_decides", field="scopes")
        if role == "institution_admin" and set(change.scopes) - {"tutoring"}:
            raise InvalidInput("a school's authorization covers tutoring only (the educational context); analytics "
                               "and model_improvement need a guardian's consent", field="scopes")
        if role == "learner":
            if ref.minor:
                raise Forbidden("a learner below the consent age cannot consent: a guardian must "
                                f"(privacy.consent_age {self._learners.settings.privacy.consent_age})",
                                code="guardian_consent_required", field="scopes")
            method = method or "self"
            if method != "self":
                raise InvalidInput("a learner consents for themselves: method 'self' (or none)", field="method")
        elif role == "guardian" and method not in GUARDIAN_METHODS:
            raise InvalidInput(f"a guardian's consent needs how it was verified: method one of "
                               f"{', '.join(sorted(GUARDIAN_METHODS))}", field="method")
        elif role == "institution_admin" and method != "school_authorization":
            raise InvalidInput("an institution consents for the educational context: method 'school_authorization'",
                               field="method")
        now = self._clock()
        decisions = [{"scope": scope, "granted": granted, "actor": principal.key_id, "role": role,
                      "method": method, "at": now} for scope, granted in change.scopes.items()]
        await self._call(self._vault.record_consent, ref.tenant, learner_id, decisions)
        await self._learners.audited(principal, ref, action="write", resource="consent",
                                     route="PUT /v1/learners/{learner_id}/consent")
        return await self.consent(principal, learner_id)

    # --- export -----------------------------------------------------------------------------------------------

    async def export(self, principal: Principal, learner_id: str) -> LearnerExport:
        """Everything kept about the learner: vault, memory, audit records about them."""
        ref, ctx = await self._existing(principal, learner_id)
        registration = None
        if ref.entry is not None:
            profile = await self._call(self._vault.profile, ref.entry)
            if profile is None:  # erased meanwhile
                raise NotFound(f"unknown learner {learner_id!r}", field="learner_id")
            registration = {"region": ref.entry.region, "created_at": ref.entry.created_at, "profile": profile}
        history = await self._call(self._vault.consent_history, ref.tenant, learner_id)
        audit = await self._learners.audit_records(ref, 100_000)
        await self._learners.audited(principal, ref, action="export", resource="all learner data",
                                     route="GET /v1/learners/{learner_id}/export")
        return LearnerExport(
            exported_at=self._clock(), tenant=ref.tenant, learner_id=learner_id, pseudonym=ref.pseudonym,
            registration=registration, consent=self._consent_view(ref, history), memory=self._learners.learner_view(ctx) if ctx else None,
            audit=[AuditRecord.model_validate(r) for r in audit])

    # --- erasure ----------------------------------------------------------------------------------------------

    async def erase(self, principal: Principal, learner_id: str) -> ErasureReceipt:
        """Erase the learner (idempotent: a repeat returns the first receipt; a job a crash interrupted resumes)."""
        tenant = principal.tenant
        self._learners.check_home(learner_id)  # another region's learner: nothing here is read or written
        await self._learners.check_access(principal, learner_id)
        refs = job_refs(self._learners.pseudonyms, tenant, learner_id)
        job = await self._call(self._vault.erasure, tenant, refs)
        if job is None or job.completed_at is not None:
            exists = False
            with contextlib.suppress(NotFound):  # unknown, or (registered) erased already
                ref = await self._learners.resolve(principal, learner_id)
                exists = ref.entry is not None or await self._learners.context(ref) is not None
            if not exists:
                if job is None:
                    raise NotFound(f"unknown learner {learner_id!r}", field="learner_id")
                # erased before: memory is cleared again (a turn that was past its checks when the erasure
                # started may have written it once more), then the same receipt
                await self._learners.forget(learner_key(tenant, learner_id))
                return self._receipt(job, learner_id)
            # new, or a client-chosen id used again after its erasure (registration 'optional'): erased anew
            receipt = {"receipt_id": uuid.uuid4().hex, "unlinkable": ref.entry is not None, "reason": "request"}
            job = await self._call(self._vault.begin_erasure, tenant, refs[0], learner_id, ref.pseudonym,
                                          receipt, restart=job is not None)
        return self._receipt(await self._run(job, principal), learner_id)

    @staticmethod
    def _receipt(job: ErasureJob, learner_id: str) -> ErasureReceipt:
        return ErasureReceipt(receipt_id=job.receipt["receipt_id"], learner_id=learner_id, status="completed",
                              requested_at=job.requested_at, completed_at=job.completed_at or job.requested_at,
                              erased=list(job.receipt.get("erased", [])),
                              unlinkable=bool(job.receipt["unlinkable"]), reason=job.receipt.get("reason", "request"))

    async def _run(self, job: ErasureJob, principal: Principal | None) -> ErasureJob:
        learner_id = job.learner_id
        if learner_id is None:  # completed meanwhile by another replica
            return job
        for step in STEPS:
            if step not in job.steps:
                await self._step(step, job, learner_id, principal)
                job = await self._call(self._vault.step_done, job, step)
                if self._after_step is not None:
                    self._after_step(step)
        erased = ["relations", *(["vault"] if job.receipt["unlinkable"] else []), "memory"]
        receipt = {**job.receipt, "erased": erased}
        return await self._call(self._vault.finish_erasure, job, receipt)

    async def _step(self, step: str, job: ErasureJob, learner_id: str, principal: Principal | None) -> None:
        """Run one step (each idempotent: a resumed job may run one twice)."""
        vault, tenant = self._vault, job.tenant
        if step == "blocked":
            await self._call(vault.block, tenant, learner_id)
        elif step == "relations":
            await asyncio.to_thread(self._unlink, tenant, learner_id)
        elif step == "audit":
            # the pseudonym recorded when the job began: the learner's key may be gone by now (a resumed job)
            subject = job.subject or self._learners.pseudonyms.pseudonym(tenant, learner_id)
            actor = principal or Principal(
                key_id="retention-sweep" if job.receipt.get("reason") == "retention" else "erasure-resume",
                tenant=tenant, role="platform_admin", scopes=frozenset())
            await self._learners.audit_subject(actor, subject, action="erase", resource="all learner data",
                                               route=ROUTE_ERASE)
        elif step == "vault":
            await self._call(vault.shred, tenant, learner_id)
        else:
            await self._learners.forget(learner_key(tenant, learner_id))

    def _unlink(self, tenant: str, learner_id: str) -> int:
        if self._relations is None:
            return 0
        n = 0
        for kind in (CLASS_LEARNERS, GUARDIAN_LEARNERS):
            for owner in self._relations.owners(tenant, kind, learner_id):
                self._relations.remove(tenant, kind, owner, learner_id)
                n += 1
        return n

    async def resume_pending(self, begun_before: float, *, at_start: bool = False) -> int:
        """Finish the pending erasures begun before ``begun_before`` (a younger one may be under way in a
        request, or its learner's last turn still in flight past its checks) that this replica can claim (the
        resuming replicas take one job each); returns how many it finished. ``at_start``: also every younger job
        a request began (its request died with the crash that restarted us; a DELETE on another replica running
        it too is harmless: every step is idempotent). A job that fails is logged, its claim released, and left
        for the next round; the others still run."""
        done = 0
        for job in await self._call(self._vault.pending_erasures):
            if job.requested_at >= begun_before and not (at_start and job.receipt.get("reason") != "retention"):
                continue
            if not await self._call(self._vault.claim, job, CLAIM_S):
                continue
            try:
                await self._run(job, None)
                done += 1
            except Exception as exc:  # noqa: BLE001 - one job must not hold up the others
                log.warning("erasure job %s not finished yet: %s: %s", job.ref[:12], type(exc).__name__, exc)
                await self._call(self._vault.claim, job, 0)  # released: the next round may take it
        return done


__all__ = ["STEPS", "LearnerRights", "age_band", "expire_learner", "job_refs"]


