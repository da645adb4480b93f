"""API-key authentication: keys are stored as SHA-256 hashes and resolve to a principal with scopes."""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tutor_cluster.errors import StatusError

Scope = Literal["tutor", "chat", "admin"]
ALL_SCOPES: tuple[Scope, ...] = ("tutor", "chat", "admin")
KEY_PREFIX = "tc-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random API key (shown once; only its hash is kept)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class ApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Name of the key (appears in logs and the ledger, never the key itself).")
    sha256: str = Field(description="Hex SHA-256 of the key; make one with `tutor-cluster keys hash`.")
    tenant: str = Field(default="default", description="Tenant the key belongs to (budgets, data scoping).")
    role: Literal["learner", "teacher", "admin", "service"] = Field(default="service", description="Caller's role.")
    scopes: list[Scope] = Field(default_factory=lambda: ["tutor", "chat"], description="Routes this key may call.")

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


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True)

    key_id: str
    tenant: str
    role: str
    scopes: frozenset[str]


class AuthError(StatusError):
    """Missing, invalid or out-of-scope credentials (401/403)."""


class Authenticator:
    """Resolves ``Authorization: Bearer <key>`` to a :class:`Principal`."""

    def __init__(self, config: AuthConfig) -> None:
        self._by_hash = {k.sha256: k for k in config.api_keys}

    def authenticate(self, authorization: str | None, scope: Scope | None) -> Principal:
        if not authorization:
            raise AuthError(401, "missing Authorization header; send 'Authorization: Bearer <api key>'")
        kind, _, token = authorization.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise AuthError(401, "Authorization must be 'Bearer <api key>'")
        digest = hash_key(token.strip())
        # Looking up a SHA-256 digest leaks nothing useful about the key through timing.
        key = self._by_hash.get(digest)
        if key is None:
            raise AuthError(401, "invalid API key")
        if scope is not None and scope not in key.scopes:
            raise AuthError(403, f"API key {key.id!r} lacks the {scope!r} scope")
        return Principal(key_id=key.id, tenant=key.tenant, role=key.role, scopes=frozenset(key.scopes))
