"""Settings of learner privacy: the pseudonym secrets, the personal-data vault, registration, the audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from tutor_cluster import constants

#: What a learner (or their guardian) consents to, each separately and revocably.
ConsentScope = Literal["tutoring", "analytics", "model_improvement"]
CONSENT_SCOPES: tuple[ConsentScope, ...] = ("tutoring", "analytics", "model_improvement")


class RetentionConfig(BaseModel):
    """How long each class of learner data is kept (days; null: until erased). `tutor-cluster retention sweep`
    deletes what expired; learner memory is also checked on every read, so an expired context is never served."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memory_days: float | None = Field(default=None, gt=0, description=(
        "Learner memory (mastery, misconceptions, preferences, recent turns) not updated for this long is deleted."))
    turn_summaries_days: float | None = Field(default=365, gt=0, description=(
        "Recent-turn summaries (the learner's own words) older than this are dropped from memory."))
    events_days: float | None = Field(default=730, gt=0, description=(
        "Analytics event partitions (telemetry.events.path, date=…) older than this are deleted (whole days)."))
    ledger_days: float | None = Field(default=2555, gt=0, description=(
        "Spend ledger entries older than this are deleted from the budget store (export them first)."))
    vault_days: float | None = Field(default=None, gt=0, description=(
        "A registered learner with no tutoring turn (or, before a first turn, no registration) for this long is "
        "erased — the same job as DELETE /v1/learners/{id}: vault, memory, relations, key material. The sweep "
        "blocks them and begins the job; a gateway replica finishes it once older than a turn may take "
        "(server.request_timeout_s + learner.call_timeout_s; privacy.erasure_resume_interval_s). Activity is recorded at most once a day per learner, so at least 2. "
        "null: kept until erased."))
    audit_days: float | None = Field(default=None, gt=0, description=(
        "Disclosure audit records older than this are removed (the oldest first; the log keeps the last removed "
        "one's hash as its checkpoint, and verifies from it). null: kept — FERPA §99.32 keeps the record of "
        "disclosures as long as the education records are kept."))

    @field_validator("vault_days")
    @classmethod
    def _longer_than_activity_is_recorded(cls, days: float | None) -> float | None:
        floor = 2 * constants.VAULT_ACTIVITY_RESOLUTION_S / 86400
        if days is not None and days < floor:
            raise ValueError(f"must be at least {floor:g} days: a learner's activity is recorded at most every "
                             f"{constants.VAULT_ACTIVITY_RESOLUTION_S} s (TUTOR_VAULT_ACTIVITY_RESOLUTION_S), so a "
                             "shorter period would erase learners who are still active")
        return days

    def cutoff(self, days: float | None, now: float) -> float | None:
        """The Unix time before which data of a class with ``days`` expired (None: kept)."""
        return None if days is None else now - days * 86400


class PrivacyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    _derived: frozenset[str] = PrivateAttr(default=frozenset())  # file settings a region derived, not configured

    pseudonym_keys_file: str | None = Field(default=None, description=(
        "Path of the pseudonym key file (one 'version:base64secret' per line, the first current; never a settings "
        "file, never logged). None: TUTOR_PSEUDONYM_KEYS_FILE, else ~/.cache/tutor-cluster/pseudonym-keys, which "
        "`tutor-cluster up` creates (mode 0600) when missing. In production mount it from a secret store at the "
        "same path on every node that runs a gateway replica."))

    audit_enabled: bool = Field(default=True, description=(
        "Keep the disclosure audit trail: every access to a learner's data (turns, views, preference changes) "
        "as a hash-chained record (`tutor-cluster audit verify`)."))
    audit_sqlite_path: str | None = Field(default=None, description=(
        "The audit log (SQLite, shared by the gateway replicas of one machine). None: "
        "~/.cache/tutor-cluster/audit.db. Several nodes: audit_redis_url."))
    audit_redis_url: str | None = Field(default=None, pattern=r"^(rediss?|unix)://", description=(
        "A Redis (AOF, appendfsync always) holding the region's audit log, one chain extended by every gateway "
        "node of the region (instead of the SQLite file)."))
    audit_redis_prefix: str = Field(default="audit", pattern=r"^[A-Za-z0-9._-]{1,64}$", description=(
        "Namespace of the audit log's Redis keys."))

    region: str = Field(default="local", pattern=r"^[a-z0-9-]{1,32}$", description=(
        "The region a deployment without `regions` serves: learners register with it as their home region and "
        "their personal data stays in its vault. With `regions`, each region's application serves its own name."))
    registration: Literal["optional", "required"] = Field(default="optional", description=(
        "'required': only learners registered through POST /v1/learners (opaque ids, personal data in the vault) "
        "exist; any other id is 404 on every learner route and turn. 'optional' (the local default): a learner id "
        "the client chose is also accepted and stored as given — never send e-mail addresses or names as ids."))
    consent_age: int = Field(default=13, ge=13, le=16, description=(
        "Below this age a guardian must consent (PUT /v1/learners/{id}/consent) before anything is stored about a "
        "learner, anything reaches a model or any event is written (COPPA: 13; GDPR Art. 8: 13-16 by member "
        "state). With only an age band, a band that starts below it counts as below. Per region: regions.<name>.privacy."))
    default_scopes: list[ConsentScope] = Field(
        default_factory=lambda: ["tutoring", "analytics"], description=(
            "Consent scopes a learner at or above consent_age has from registration (each revocable through the "
            "consent route); a younger learner has none until a guardian grants them. tutoring: turns and "
            "learner memory; analytics: interaction events; model_improvement: routing-training features in "
            "the spend ledger (and evaluation rows, when evaluation exists)."))
    retention: RetentionConfig = Field(default_factory=RetentionConfig, description=(
        "How long each class of learner data is kept (per region: regions.<name>.privacy)."))
    erasure_resume_interval_s: float = Field(default=60.0, gt=0, le=3600, description=(
        "How often each gateway replica looks for erasure jobs it did not start — those the retention sweep "
        "began and those a crash interrupted — and finishes those older than a turn may take "
        "(server.request_timeout_s + learner.call_timeout_s), each claimed by one resuming replica. At start a "
        "replica also finishes the younger jobs a request began (interrupted by the crash)."))
    vault_sqlite_path: str | None = Field(default=None, description=(
        "The region's vault of personal data (SQLite, encrypted per field; shared by the gateway replicas of one "
        "machine). None: ~/.cache/tutor-cluster/vault.db. Several nodes: vault_redis_url."))
    vault_redis_url: str | None = Field(default=None, pattern=r"^(rediss?|unix)://", description=(
        "A Redis (AOF, appendfsync always) holding the region's vault, shared by every gateway node of the region "
        "(instead of the SQLite file). Only sealed values, ids and job states are stored there."))
    vault_redis_prefix: str = Field(default="vault", pattern=r"^[A-Za-z0-9._-]{1,64}$", description=(
        "Namespace of the vault's Redis keys."))
    vault_kek_file: str | None = Field(default=None, description=(
        "Path of the vault's key-encryption key file ('version:base64key' lines, the first current; never a "
        "settings file, never logged). None: TUTOR_VAULT_KEK_FILE, else ~/.cache/tutor-cluster/vault-kek, which "
        "`tutor-cluster up` creates (mode 0600). In production mount it from a secret store or KMS agent."))

    def configured(self, setting: str) -> bool:
        """Whether a file setting was given (a region's own default file counts as not given: created locally)."""
        return getattr(self, setting) is not None and setting not in self._derived

    def vault_path(self) -> Path:
        return Path(self.vault_sqlite_path).expanduser() if self.vault_sqlite_path else constants.CACHE_DIR / "vault.db"

    def kek_path(self) -> Path:
        return Path(self.vault_kek_file).expanduser() if self.vault_kek_file else constants.VAULT_KEK_FILE

    def audit_path(self) -> Path:
        return Path(self.audit_sqlite_path).expanduser() if self.audit_sqlite_path else constants.CACHE_DIR / "audit.db"

    def keys_path(self) -> Path:
        return Path(self.pseudonym_keys_file).expanduser() if self.pseudonym_keys_file else constants.PSEUDONYM_KEYS_FILE
