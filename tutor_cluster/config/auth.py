"""Settings of API authentication: API keys (stored as SHA-256 hashes) and what each may call."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tutor_cluster.config.limits import Rate
from tutor_cluster.identity import Role

#: tutor: /v1/tutor, /v1/learners, /v1/curriculum; chat: /v1/chat, /v1/models; admin: /v1/admin; system_prompt: may
#: send ``system``/``developer`` messages in a chat request (instructions to the model, so not for every client).
Scope = Literal["tutor", "chat", "admin", "system_prompt"]


ALL_SCOPES: tuple[Scope, ...] = ("tutor", "chat", "admin", "system_prompt")


class ApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Name of the key (appears in logs and the ledger, never the key itself).")
    hash: str | None = Field(default=None, description=(
        "Salted scrypt hash of the key, 'scrypt$N$r$p$salt$digest' (`tutor-cluster keys new` prints one)."))
    prefix: str | None = Field(default=None, pattern=r"^[0-9a-f]{8}$", description=(
        "The key's public lookup id: keys look like 'tc-<prefix>-<secret>' (with `hash`)."))
    sha256: str | None = Field(default=None, description=(
        "Legacy: unsalted hex SHA-256 of the key (`tutor-cluster keys hash`); prefer `hash` + `prefix`."))
    expires_at: datetime | None = Field(default=None, description=(
        "After this instant (ISO 8601, UTC if no zone) the key is refused. Rotation: add the new key, let both "
        "work while clients move, then let the old one expire."))
    tenant: str = Field(default="default", pattern=r"^[A-Za-z0-9._-]{1,64}$",
                        description="Tenant the key belongs to: it sees only this tenant's learners; budgets.")
    role: Role = Field(default="service", description=(
        "Caller's role: learner, guardian, teacher, institution_admin, service, ml_job, platform_admin (docs/roles.md); "
        "'admin' is read as platform_admin."))
    learner_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:@-]{1,128}$",
                                   description="For role 'learner': the learner this key is (required then).")
    scopes: list[Scope] = Field(default_factory=lambda: ["tutor", "chat"], description="Routes this key may call.")
    rate: Rate | None = Field(default=None, description="This key's request rate (overrides limits.per_key).")

    @field_validator("role", mode="before")
    @classmethod
    def _legacy_admin(cls, v: object) -> object:
        return "platform_admin" if v == "admin" else v

    @model_validator(mode="after")
    def _one_hash(self) -> "ApiKey":
        if (self.hash is None) == (self.sha256 is None):
            raise ValueError("give exactly one of 'hash' (with 'prefix') or the legacy 'sha256'")
        if (self.hash is None) != (self.prefix is None):
            raise ValueError("'prefix' goes with 'hash' (both from `tutor-cluster keys new`)")
        if self.hash is not None and (not self.hash.startswith("scrypt$") or self.hash.count("$") != 5):
            raise ValueError("hash: expected 'scrypt$N$r$p$salt$digest' as `tutor-cluster keys new` prints it")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            object.__setattr__(self, "expires_at", self.expires_at.replace(tzinfo=timezone.utc))
        return self

    @model_validator(mode="after")
    def _learner_bound(self) -> "ApiKey":
        if (self.role == "learner") != (self.learner_id is not None):
            raise ValueError("learner_id is required for role 'learner' and only for it")
        return self

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.lower()
        if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
            raise ValueError("must be 64 hex characters (the SHA-256 of the key, not the key)")
        return v


class JwtIssuer(BaseModel):
    """An identity provider whose JWT bearer tokens are accepted (an institution's SSO), mapped to principals."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(description="The tokens' `iss` claim.")
    audience: str = Field(default="tutor-cluster", description="The `aud` claim tokens must carry.")
    algorithm: Literal["HS256", "RS256"] = Field(description="HS256 (shared secret) or RS256 (JWKS public keys).")
    secret_env: str | None = Field(default=None, description="HS256: the env var holding the shared secret.")
    jwks_file: str | None = Field(default=None, description="RS256: a JWKS file with the issuer's public keys.")
    tenant_claim: str = Field(default="tenant", description="Claim naming the tenant.")
    role_claim: str = Field(default="role", description="Claim naming the role.")
    learner_claim: str = Field(default="learner_id", description="Claim naming the learner (role learner).")
    scope_claim: str = Field(default="scope", description="Claim with space-separated scopes.")
    leeway_s: int = Field(default=30, ge=0, le=300, description="Clock skew allowed on exp/nbf/iat.")

    @model_validator(mode="after")
    def _key_source(self) -> "JwtIssuer":
        if self.algorithm == "HS256" and not self.secret_env:
            raise ValueError("HS256 needs secret_env (the secret itself never goes in a config file)")
        if self.algorithm == "RS256" and not self.jwks_file:
            raise ValueError("RS256 needs jwks_file")
        return self


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    api_keys: list[ApiKey] = Field(default_factory=list, description="Accepted keys (hashed).")
    jwt_issuers: list[JwtIssuer] = Field(default_factory=list, description="Accepted JWT issuers (SSO).")
