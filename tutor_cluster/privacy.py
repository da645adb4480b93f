"""Keyed pseudonyms: what every tier below the API carries instead of a learner's own id.

A pseudonym is ``<version>-<HMAC-SHA256(secret, tenant NUL id)>`` (the first 32 hex digits: 128 bits). Without the
secret nobody can compute it from a list of candidate ids (an unkeyed hash of ``tenant/id`` can be reversed by
hashing every id one knows); with it, the same learner always gets the same pseudonym, so analytics rows, ledger
entries and budget keys still join. The version names the secret, so it can rotate: new rows carry the new
version, old rows keep theirs.

The secrets live in a key file (one ``version:base64secret`` per line, the first is current) that is never a
settings file and never logged: ``tutor-cluster up`` creates one with mode 0600 in the cache directory for local
use; production mounts one from a secret store (``privacy.pseudonym_keys_file``). With ``regions``, each region
has its own file (``Settings.for_region``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path
from typing import Self

#: Bytes of a generated secret; shorter secrets are refused.
SECRET_BYTES = 32
_VERSION = re.compile(r"^[a-z0-9]{1,16}$")


class PseudonymKeyError(ValueError):
    """A key file is missing or malformed; the message says how to fix it."""


class VersionedSecrets:
    """Versioned secrets from a key file (``version:base64secret`` lines); the first is current. Subclasses say
    what the secrets are for (``WHAT``) and how to make a new one (``ROTATE``)."""

    WHAT = "secret"
    ROTATE = "tutor-cluster privacy rotate-key"

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise PseudonymKeyError(f"no {self.WHAT}: give at least one 'version:base64secret' line")
        seen: set[str] = set()
        for version, secret in keys:
            if not _VERSION.match(version):
                raise PseudonymKeyError(f"{self.WHAT} version {version!r}: use 1-16 lower-case letters or digits")
            if version in seen:
                raise PseudonymKeyError(f"{self.WHAT} version {version!r} appears twice")
            if len(secret) < SECRET_BYTES:
                raise PseudonymKeyError(f"{self.WHAT} {version!r} is {len(secret)} bytes; use at least "
                                        f"{SECRET_BYTES} random bytes ({self.ROTATE} makes one)")
            seen.add(version)
        self._keys = list(keys)

    @property
    def current(self) -> str:
        """The version new material is made with."""
        return self._keys[0][0]

    @property
    def versions(self) -> list[str]:
        return [v for v, _ in self._keys]

    def secret(self, version: str | None = None) -> bytes:
        """The current secret (or ``version``'s)."""
        v = version or self.current
        secret = dict(self._keys).get(v)
        if secret is None:
            raise PseudonymKeyError(f"no {self.WHAT} of version {v!r} (known: {', '.join(self.versions)})")
        return secret

    def __repr__(self) -> str:  # never the secrets
        return f"{type(self).__name__}(current={self.current!r}, versions={self.versions!r})"

    @classmethod
    def parse(cls, text: str, *, source: str = "key file") -> Self:
        keys = []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            version, sep, encoded = line.partition(":")
            try:
                secret = base64.b64decode(encoded.strip(), validate=True) if sep else b""
            except (binascii.Error, ValueError):
                raise PseudonymKeyError(f"{source}:{n}: the secret is not base64") from None
            if not sep:
                raise PseudonymKeyError(f"{source}:{n}: expected 'version:base64secret'")
            keys.append((version.strip(), secret))
        return cls(keys)

    #: The setting that names the file (for error messages).
    SETTING = "privacy.pseudonym_keys_file"

    @classmethod
    def load(cls, path: Path) -> Self:
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise PseudonymKeyError(f"{cls.WHAT} file {path} does not exist: `tutor-cluster up` creates one "
                                    f"locally; in production mount one from your secret store and set "
                                    f"{cls.SETTING}") from None
        return cls.parse(text, source=str(path))


class PseudonymKeys(VersionedSecrets):
    """Versioned pseudonym secrets; the first is current."""

    WHAT = "pseudonym key"

    def pseudonym(self, tenant: str, learner_id: str, *, version: str | None = None,
                  learner_key: bytes | None = None) -> str:
        """The learner's pseudonym under the current secret (or ``version``'s). ``learner_key``: the registered
        learner's own key material (from the vault): destroying it at erasure makes the pseudonym impossible to
        recompute from the id, so rows that carry it can no longer be joined to the learner (crypto-shredding)."""
        v = version or self.current
        message = f"{tenant}\x00{learner_id}"
        if learner_key is not None:
            message += "\x00" + hmac.new(learner_key, b"pseudonym", hashlib.sha256).hexdigest()
        digest = hmac.new(self.secret(v), message.encode(), hashlib.sha256).hexdigest()
        return f"{v}-{digest[:32]}"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def ensure_key_file(path: Path) -> bool:
    """Create a key file with one fresh secret (mode 0600) unless one exists; True when created."""
    if path.exists():
        return False
    _write_private(path, f"k1:{base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()}\n")
    return True


def rotate_key_file(path: Path, kind: type[VersionedSecrets] = PseudonymKeys) -> str:
    """Put a fresh secret first (the new current version), keeping the old ones for reading old rows; returns
    the new version."""
    keys = kind.load(path)
    numbers = [int(v[1:]) for v in keys.versions if v.startswith("k") and v[1:].isdigit()]
    version = f"k{max(numbers, default=0) + 1}"
    line = f"{version}:{base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()}\n"
    _write_private(path, line + path.read_text())
    return version
