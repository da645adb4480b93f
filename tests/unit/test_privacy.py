"""Keyed pseudonyms (tutor_cluster/privacy.py) and their key file: what the docs say "keyed" means."""

import base64
import hashlib
import stat

import pytest

from tutor_cluster.privacy import PseudonymKeyError, PseudonymKeys, ensure_key_file, rotate_key_file

SECRET = b"s" * 32


def test_a_pseudonym_is_an_hmac_under_a_versioned_secret() -> None:
    keys = PseudonymKeys([("k1", SECRET)])
    p = keys.pseudonym("acme", "ana@example.com")
    assert p == keys.pseudonym("acme", "ana@example.com") and p.startswith("k1-") and len(p) == 35
    assert p != keys.pseudonym("globex", "ana@example.com")  # tenant is part of it
    other = PseudonymKeys([("k1", b"t" * 32)])
    assert other.pseudonym("acme", "ana@example.com") != p  # another secret: another pseudonym


def test_without_the_secret_a_list_of_ids_does_not_reverse_it() -> None:
    """The old scheme (unkeyed sha256 of tenant and id) fell to hashing every candidate id; the keyed one does not
    match any unkeyed hash of the candidates."""
    keys = PseudonymKeys([("k1", SECRET)])
    candidates = [f"student-{i}" for i in range(1000)]
    target = keys.pseudonym("acme", "student-417")
    unkeyed = {hashlib.sha256(f"acme\x00{c}".encode()).hexdigest()[:32] for c in candidates}
    assert target.split("-", 1)[1] not in unkeyed


def test_rotation_keeps_old_versions_readable(tmp_path) -> None:
    path = tmp_path / "keys"
    assert ensure_key_file(path) and not ensure_key_file(path)  # made once
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = PseudonymKeys.load(path)
    old = before.pseudonym("acme", "l1")
    assert rotate_key_file(path) == "k2"
    after = PseudonymKeys.load(path)
    assert after.current == "k2" and after.versions == ["k2", "k1"]
    assert after.pseudonym("acme", "l1").startswith("k2-")
    assert after.pseudonym("acme", "l1", version="k1") == old  # rows written under k1 still join
    assert "k1:" in path.read_text() and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_secret_never_shows() -> None:
    keys = PseudonymKeys([("k1", SECRET)])
    assert SECRET.decode() not in repr(keys) and base64.b64encode(SECRET).decode() not in repr(keys)


@pytest.mark.parametrize(("text", "message"), [
    ("", "no pseudonym key"),
    ("k1", "expected 'version:base64secret'"),
    ("k1:not base64!", "not base64"),
    (f"k1:{base64.b64encode(b'short').decode()}", "at least 32"),
    (f"K 1:{base64.b64encode(SECRET).decode()}", "lower-case"),
    (f"k1:{base64.b64encode(SECRET).decode()}\nk1:{base64.b64encode(SECRET).decode()}", "appears twice"),
])
def test_malformed_key_files_say_how_to_fix(text, message) -> None:
    with pytest.raises(PseudonymKeyError, match=message):
        PseudonymKeys.parse(text)


def test_a_missing_key_file_is_refused_not_invented(tmp_path) -> None:
    with pytest.raises(PseudonymKeyError, match="does not exist"):
        PseudonymKeys.load(tmp_path / "absent")
