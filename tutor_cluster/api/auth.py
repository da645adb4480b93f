"""API-key (and JWT, ``jwt_auth.py``) authentication. Keys look like ``tc-<prefix>-<secret>``: the prefix finds the key's entry, the salted
scrypt hash in it verifies the secret (once per key per replica: verified keys are remembered by their SHA-256,
which identifies them exactly). Legacy entries hold an unsalted SHA-256 of the whole key. Expired keys are
refused. A key resolves to a :class:`~tutor_cluster.identity.Principal`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from tutor_cluster.api.jwt_auth import JwtError, JwtVerifier, looks_like_jwt
from tutor_cluster.config.auth import ApiKey, AuthConfig, Scope
from tutor_cluster.identity import Principal

KEY_PREFIX = "tc-"
#: scrypt cost (N, r, p): ~50 ms of CPU per verification here, paid once per key per replica.
SCRYPT = (2**14, 8, 1)
_TOKEN = re.compile(r"^tc-([0-9a-f]{8})-([A-Za-z0-9_-]{20,})$")
_VERIFIED_MAX = 10_000


def hash_key(key: str) -> str:
    """Legacy: the unsalted SHA-256 of a key (``sha256`` entries)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=64 * 1024 * 1024)


def kdf_hash(key: str, *, salt: bytes | None = None) -> str:
    """The ``hash`` entry for a key: ``scrypt$N$r$p$salt$digest`` (base64url)."""
    n, r, p = SCRYPT
    salt = salt or secrets.token_bytes(16)
    digest = _scrypt(key, salt, n, r, p)
    b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")  # noqa: E731
    return f"scrypt${n}${r}${p}${b64(salt)}${b64(digest)}"


def verify_kdf(key: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    unb64 = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
    return hmac.compare_digest(_scrypt(key, unb64(salt), int(n), int(r), int(p)), unb64(digest))


def new_key() -> str:
    """A fresh random key, ``tc-<prefix>-<secret>`` (shown once; only its hash is kept)."""
    return f"{KEY_PREFIX}{secrets.token_hex(4)}-{secrets.token_urlsafe(32)}"


def prefix_of(key: str) -> str | None:
    """The lookup prefix of a key in the current format (None for other keys)."""
    match = _TOKEN.match(key)
    return match.group(1) if match else None


class AuthError(Exception):
    """Missing, invalid, expired or out-of-scope credentials: ``status`` 401 or 403."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Authenticator:
    """Resolves ``Authorization: Bearer <key>`` to a :class:`Principal`."""

    def __init__(self, config: AuthConfig, *, clock: Callable[[], float] = time.time) -> None:
        self._by_sha256 = {k.sha256: k for k in config.api_keys if k.sha256}
        self._by_prefix = {k.prefix: k for k in config.api_keys if k.prefix}
        self._verified: OrderedDict[str, ApiKey] = OrderedDict()  # sha256 of a key that passed scrypt → entry
        self._clock = clock
        self._jwt = JwtVerifier(config.jwt_issuers) if config.jwt_issuers else None

    def _key(self, token: str) -> ApiKey | None:
        digest = hash_key(token)
        # Looking up a SHA-256 digest leaks nothing useful about the key through timing.
        key = self._by_sha256.get(digest) or self._verified.get(digest)
        if key is not None:
            return key
        match = _TOKEN.match(token)
        candidate = self._by_prefix.get(match.group(1)) if match else None
        if candidate is None or candidate.hash is None or not verify_kdf(token, candidate.hash):
            return None
        self._verified[digest] = candidate
        while len(self._verified) > _VERIFIED_MAX:
            self._verified.popitem(last=False)
        return candidate

    def authenticate(self, authorization: str | None, scope: Scope | None) -> Principal:
        if not authorization:
            raise AuthError(401, "missing Authorization header; send 'Authorization: Bearer <api key>'")
        kind, _, token = authorization.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise AuthError(401, "Authorization must be 'Bearer <api key>'")
        token = token.strip()
        if self._jwt is not None and looks_like_jwt(token):
            try:
                principal = self._jwt.principal(token)
            except JwtError as exc:
                raise AuthError(401, str(exc)) from None
            if scope is not None and scope not in principal.scopes:
                raise AuthError(403, f"token of {principal.key_id!r} lacks the {scope!r} scope")
            return principal
        key = self._key(token)
        if key is None:
            raise AuthError(401, "invalid API key")
        if key.expires_at is not None and key.expires_at.timestamp() <= self._clock():
            raise AuthError(401, f"API key {key.id!r} expired at {key.expires_at.isoformat()}; use its replacement")
        if scope is not None and scope not in key.scopes:
            raise AuthError(403, f"API key {key.id!r} lacks the {scope!r} scope")
        return Principal(key_id=key.id, tenant=key.tenant, role=key.role, scopes=frozenset(key.scopes),
                         learner_id=key.learner_id)

