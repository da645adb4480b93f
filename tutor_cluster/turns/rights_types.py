"""What the learner-rights routes take and return: registration, consent, export, the erasure receipt. The HTTP
API serves these shapes as they are (``api/protocol.py`` re-exports them)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tutor_cluster.config.privacy import ConsentScope
from tutor_cluster.turns.types import AuditRecord, LearnerView

#: Age bands: under 13 needs a guardian's consent in most jurisdictions (COPPA, GDPR Art. 8).
AgeBand = Literal["under_13", "13_15", "16_17", "adult"]
_EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s.]{2,63}$"
_NAME = r"^[^\x00-\x1f\x7f]+$"


class Registration(BaseModel):
    """``POST /v1/learners``: a learner's personal data. It is kept only in the vault of the learner's home
    region, encrypted; every other tier sees the opaque id and keyed pseudonym the registration returns."""

    model_config = ConfigDict(extra="forbid")

    display_name: str = Field(min_length=1, max_length=200, pattern=_NAME, description="What the tutor calls them.")
    email: str | None = Field(default=None, max_length=320, pattern=_EMAIL, description="The learner's e-mail.")
    birth_date: dt.date | None = Field(default=None, description="YYYY-MM-DD; the age band is derived from it.")
    age_band: AgeBand | None = Field(default=None, description="When no birth date is given.")
    guardian_email: str | None = Field(default=None, max_length=320, pattern=_EMAIL,
                                       description="How to reach a parent or guardian.")
    home_region: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,32}$", description=(
        "Where the learner's personal data lives; default: the region this deployment serves."))

    @model_validator(mode="after")
    def _age_given(self) -> "Registration":
        if self.birth_date is None and self.age_band is None:
            raise ValueError("give birth_date (YYYY-MM-DD) or age_band (under_13, 13_15, 16_17, adult)")
        return self


class Registered(BaseModel):
    learner_id: str = Field(description="The learner's opaque id: use it on every other route.")
    region: str = Field(description="The home region whose vault holds the personal data.")
    age_band: AgeBand
    created_at: float = Field(description="When the learner was registered (Unix time).")
    consent_required: bool = Field(description=(
        "Below privacy.consent_age: nothing is stored or tutored until a guardian consents "
        "(PUT /v1/learners/{id}/consent)."))


#: How a guardian's consent was verified (COPPA §312.5(b) methods; school_authorization: the school consents
#: for the educational context, FERPA/COPPA's school exception); ``self``: a learner at or above consent age.
ConsentMethod = Literal["signed_form", "credit_card", "phone_or_video_call", "government_id", "knowledge_based",
                        "school_authorization", "self"]


class ConsentChange(BaseModel):
    """``PUT /v1/learners/{id}/consent``: grant or revoke scopes, each on its own."""

    model_config = ConfigDict(extra="forbid")

    scopes: dict[ConsentScope, bool] = Field(min_length=1, description=(
        "tutoring, analytics, model_improvement → true (grant) or false (revoke)."))
    method: ConsentMethod | None = Field(default=None, description=(
        "How the guardian's identity and consent were verified (required from a guardian or institution admin)."))


class ConsentRecord(BaseModel):
    scope: ConsentScope
    granted: bool
    actor: str = Field(description="The API key that recorded it.")
    role: str
    method: ConsentMethod
    at: float


class ConsentView(BaseModel):
    minor: bool = Field(description="Below privacy.consent_age: only a guardian (or the school) grants scopes.")
    scopes: dict[ConsentScope, bool] = Field(description="What is in force now.")
    records: list[ConsentRecord] = Field(description="Every decision, oldest first.")


class ErasureReceipt(BaseModel):
    """What ``DELETE /v1/learners/{id}`` did (the same receipt again on a repeat)."""

    receipt_id: str
    learner_id: str
    status: Literal["completed"]
    requested_at: float
    completed_at: float
    erased: list[str] = Field(description="What was deleted: personal data and key (vault), memory, relations.")
    unlinkable: bool = Field(description=(
        "True when the learner's key was destroyed, so pseudonymous rows about them (analytics events, spend "
        "ledger, audit records) can no longer be joined to them; False for a learner who was never registered "
        "(their pseudonym is keyed by the service's secret alone)."))
    reason: Literal["request", "retention"] = Field(default="request", description=(
        "'request': asked through this route; 'retention': the learner was inactive longer than "
        "privacy.retention.vault_days and the retention sweep erased them."))


class LearnerExport(BaseModel):
    """``GET /v1/learners/{id}/export``: everything kept about the learner, as one document (GDPR Art. 20)."""

    format: Literal["tutor-cluster.learner-export/1"] = "tutor-cluster.learner-export/1"
    exported_at: float
    tenant: str
    learner_id: str
    pseudonym: str = Field(description="The keyed pseudonym pseudonymous rows (events, ledger) carry.")
    registration: dict[str, Any] | None = Field(description="Personal data from the vault (null: not registered).")
    memory: LearnerView | None = Field(description="Mastery, misconceptions, preferences, recent turns.")
    consent: ConsentView = Field(description="Consent in force and every decision recorded.")
    audit: list[AuditRecord] = Field(description="Every recorded access to the learner's data, newest first.")
