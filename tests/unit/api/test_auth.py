import pytest

from tutor_cluster.api.auth import Authenticator, AuthError, hash_key, new_key
from tutor_cluster.config.auth import ApiKey, AuthConfig


@pytest.fixture
def keys():
    full, chat = new_key(), new_key()
    auth = Authenticator(AuthConfig(api_keys=[
        ApiKey(id="full", sha256=hash_key(full), scopes=["tutor", "chat", "admin"]),
        ApiKey(id="chat", sha256=hash_key(chat), scopes=["chat"], tenant="t2"),
    ]))
    return auth, full, chat


def test_valid_key_resolves_principal(keys) -> None:
    auth, full, chat = keys
    assert auth.authenticate(f"Bearer {full}", "admin").key_id == "full"
    assert auth.authenticate(f"bearer {chat}", "chat").tenant == "t2"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer wrong"])
def test_missing_or_wrong_key_is_401(keys, header) -> None:
    auth, *_ = keys
    with pytest.raises(AuthError) as exc:
        auth.authenticate(header, "tutor")
    assert exc.value.status == 401


def test_out_of_scope_is_403(keys) -> None:
    auth, _, chat = keys
    with pytest.raises(AuthError) as exc:
        auth.authenticate(f"Bearer {chat}", "tutor")
    assert exc.value.status == 403


def test_config_stores_only_hashes() -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        ApiKey(id="x", sha256="tc-plaintext-key")
