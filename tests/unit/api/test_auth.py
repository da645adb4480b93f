import pytest

from tutor_cluster.api.auth import Authenticator, AuthError, hash_key, kdf_hash, new_key
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


def test_a_key_from_keys_new_verifies_by_its_salted_hash_and_expires(tmp_path) -> None:
    import subprocess
    import sys

    import yaml

    out = subprocess.run([sys.executable, "-m", "tutor_cluster.cli.main", "keys", "new", "--id", "app", "--tenant",
                          "acme", "--role", "teacher", "--expires-days", "30"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    key = out.split("key (shown once): ")[1].split()[0]
    entry = ApiKey.model_validate(yaml.safe_load(out.split("api_keys:\n")[1])[0])
    assert entry.hash.startswith("scrypt$") and key not in out.split("api_keys:")[1]  # only the hash is kept
    assert entry.prefix and key.startswith(f"tc-{entry.prefix}-")
    other_salt = ApiKey(id="b", prefix="00000000", hash=kdf_hash(key), tenant="acme")
    assert other_salt.hash != entry.hash  # salted: the same key hashes differently each time
    now = [entry.expires_at.timestamp() - 60]
    auth = Authenticator(AuthConfig(api_keys=[entry]), clock=lambda: now[0])
    principal = auth.authenticate(f"Bearer {key}", "tutor")
    assert (principal.key_id, principal.tenant, principal.role) == ("app", "acme", "teacher")
    with pytest.raises(AuthError):  # right prefix, wrong secret
        auth.authenticate(f"Bearer tc-{entry.prefix}-{'x' * 43}", "tutor")
    now[0] += 120  # past expires_at
    with pytest.raises(AuthError, match="expired") as expired:
        auth.authenticate(f"Bearer {key}", "tutor")
    assert expired.value.status == 401


def test_an_entry_needs_exactly_one_kind_of_hash() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ApiKey(id="x")
    with pytest.raises(ValueError, match="prefix"):
        ApiKey(id="x", hash="scrypt$1$2$3$a$b")
