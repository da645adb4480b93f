"""JWT bearer tokens (an institution's SSO) through the real Authenticator: HS256 with a secret from the
environment, RS256 with a JWKS file; signature, expiry, issuer and audience are checked, claims become principals."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tutor_cluster.api.auth import Authenticator, AuthError
from tutor_cluster.config.auth import AuthConfig, JwtIssuer

SECRET = "a-long-shared-secret-for-tests-only-0123456789"


def _claims(**over) -> dict:
    now = int(time.time())
    return {"iss": "https://sso.school.example", "aud": "tutor-cluster", "sub": "teacher-7", "exp": now + 300,
            "iat": now, "tenant": "acme", "role": "teacher", "scope": "tutor chat", **over}


@pytest.fixture
def hs(monkeypatch) -> Authenticator:
    monkeypatch.setenv("SCHOOL_JWT_SECRET", SECRET)
    issuer = JwtIssuer(issuer="https://sso.school.example", algorithm="HS256", secret_env="SCHOOL_JWT_SECRET")
    return Authenticator(AuthConfig(jwt_issuers=[issuer]))


def test_a_signed_token_becomes_a_principal(hs: Authenticator) -> None:
    p = hs.authenticate("Bearer " + jwt.encode(_claims(), SECRET, algorithm="HS256"), "tutor")
    assert (p.key_id, p.tenant, p.role, p.scopes) == ("jwt:https://sso.school.example:teacher-7", "acme", "teacher",
                                                      frozenset({"tutor", "chat"}))


@pytest.mark.parametrize("token, why", [
    (lambda: jwt.encode(_claims(), "another-secret-of-the-same-length-0123456789", algorithm="HS256"), "Signature"),
    (lambda: jwt.encode(_claims(exp=int(time.time()) - 600), SECRET, algorithm="HS256"), "expired"),
    (lambda: jwt.encode(_claims(aud="someone-else"), SECRET, algorithm="HS256"), "audience"),
    (lambda: jwt.encode(_claims(iss="https://evil.example"), SECRET, algorithm="HS256"), "issuer"),
    (lambda: jwt.encode(_claims(), None, algorithm="none"), "alg"),
    (lambda: jwt.encode(_claims(role="superuser"), SECRET, algorithm="HS256"), "role"),
    (lambda: jwt.encode(_claims(tenant="a/b"), SECRET, algorithm="HS256"), "tenant"),
    (lambda: jwt.encode(_claims(role="learner"), SECRET, algorithm="HS256"), "learner_id"),
])
def test_a_bad_token_is_401_saying_why(hs: Authenticator, token, why) -> None:
    with pytest.raises(AuthError) as exc:
        hs.authenticate(f"Bearer {token()}", "tutor")
    assert exc.value.status == 401 and why.lower() in exc.value.message.lower(), exc.value.message


def test_scopes_come_from_the_token(hs: Authenticator) -> None:
    with pytest.raises(AuthError) as exc:
        hs.authenticate("Bearer " + jwt.encode(_claims(scope="chat"), SECRET, algorithm="HS256"), "tutor")
    assert exc.value.status == 403


def test_rs256_with_a_jwks_file(tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    auth = Authenticator(AuthConfig(jwt_issuers=[JwtIssuer(issuer="https://sso.school.example", algorithm="RS256",
                                                           jwks_file=str(jwks))]))
    token = jwt.encode(_claims(role="learner", learner_id="kid-1"), private, algorithm="RS256", headers={"kid": "k1"})
    p = auth.authenticate(f"Bearer {token}", "tutor")
    assert p.role == "learner" and p.learner_id == "kid-1"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(_claims(), other, algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(AuthError):
        auth.authenticate(f"Bearer {forged}", "tutor")
