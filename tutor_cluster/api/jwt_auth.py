"""JWT bearer tokens from configured issuers (an institution's SSO) as a second way in: HS256 with a shared
secret from the environment, or RS256 with the issuer's public keys from a JWKS file. Signature, ``exp``, ``nbf``,
``iss`` and ``aud`` are verified (PyJWT); the claims map to the same principals as API keys."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import jwt

from tutor_cluster.config.auth import ALL_SCOPES, JwtIssuer
from tutor_cluster.identity import ROLES, TENANT_PATTERN, Principal

_LEARNER = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")


class JwtError(Exception):
    """The token is not one we accept; the message says why (it is shown to the caller)."""


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


class JwtVerifier:
    def __init__(self, issuers: list[JwtIssuer]) -> None:
        self._issuers = {i.issuer: i for i in issuers}
        self._keys: dict[str, Any] = {}
        for issuer in issuers:
            if issuer.jwks_file:
                jwks = json.loads(Path(issuer.jwks_file).expanduser().read_text(encoding="utf-8"))
                for jwk in jwks.get("keys", []):
                    self._keys[f"{issuer.issuer}#{jwk.get('kid', '')}"] = jwt.PyJWK(jwk).key

    def _key(self, issuer: JwtIssuer, header: dict[str, Any]) -> Any:
        if issuer.algorithm == "HS256":
            secret = os.environ.get(issuer.secret_env or "")
            if not secret:
                raise JwtError(f"issuer {issuer.issuer!r} is not usable: {issuer.secret_env} is not set")
            return secret
        key = self._keys.get(f"{issuer.issuer}#{header.get('kid', '')}")
        if key is None:
            raise JwtError(f"no key {header.get('kid')!r} for issuer {issuer.issuer!r}")
        return key

    def principal(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise JwtError(f"not a valid JWT: {exc}") from None
        issuer = self._issuers.get(str(unverified.get("iss")))
        if issuer is None:
            raise JwtError("token issuer is not accepted here")
        try:  # only the issuer's own algorithm: no 'none', no HS256-with-a-public-key confusion
            claims = jwt.decode(token, self._key(issuer, header), algorithms=[issuer.algorithm],
                                audience=issuer.audience, issuer=issuer.issuer, leeway=issuer.leeway_s,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.PyJWTError as exc:
            raise JwtError(f"token refused: {exc}") from None
        tenant, role = claims.get(issuer.tenant_claim), claims.get(issuer.role_claim)
        if not isinstance(tenant, str) or not re.fullmatch(TENANT_PATTERN, tenant):
            raise JwtError(f"claim {issuer.tenant_claim!r} must name a tenant")
        if role not in ROLES:
            raise JwtError(f"claim {issuer.role_claim!r} must be one of {', '.join(ROLES)}")
        learner = claims.get(issuer.learner_claim)
        if role == "learner" and not (isinstance(learner, str) and _LEARNER.match(learner)):
            raise JwtError(f"a learner's token needs claim {issuer.learner_claim!r}")
        scopes = frozenset(s for s in str(claims.get(issuer.scope_claim, "")).split() if s in ALL_SCOPES)
        return Principal(key_id=f"jwt:{issuer.issuer}:{claims['sub']}", tenant=tenant, role=role, scopes=scopes,
                         learner_id=learner if role == "learner" else None)
