"""API-key authentication: keys are stored as SHA-256 hashes and resolve to a principal with scopes."""

from __future__ import annotations

import hashlib
import secrets

from tutor_cluster.config.auth import AuthConfig, Scope
from tutor_cluster.identity import Principal

KEY_PREFIX = "tc-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random API key (shown once; only its hash is kept)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)



class AuthError(Exception):
    """Missing, invalid or out-of-scope credentials: ``status`` 401 or 403."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
        return Principal(key_id=key.id, tenant=key.tenant, role=key.role, scopes=frozenset(key.scopes),
                         learner_id=key.learner_id)
