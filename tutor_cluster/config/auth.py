"""Settings of API authentication: API keys (stored as SHA-256 hashes) and what each may call."""

from __future__ import annotations

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
    sha256: str = Field(description="Hex SHA-256 of the key; make one with `tutor-cluster keys hash`.")
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
    def _learner_bound(self) -> "ApiKey":
        if (self.role == "learner") != (self.learner_id is not None):
            raise ValueError("learner_id is required for role 'learner' and only for it")
        return self

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        v = v.lower()
        if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
            raise ValueError("must be 64 hex characters (the SHA-256 of the key, not the key)")
        return v


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    api_keys: list[ApiKey] = Field(default_factory=list, description="Accepted keys (hashed).")
