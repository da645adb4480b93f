"""Envelope encryption of the vault, three keys deep:

    key-encryption key (KEK: a key file or KMS, never in the vault)
      └─ wraps one data key per tenant (stored in the vault)
           └─ seals one key per learner (stored in the vault)
                └─ seals that learner's personal data

All AES-256-GCM with the owner's names as associated data, so a sealed value moved to another tenant or learner
does not open. Destroying a learner's key makes their personal data unreadable — and, since the learner's
pseudonym is keyed by it too (``privacy.py``), every pseudonymous row about them unlinkable (crypto-shredding).
Rotating the KEK re-wraps tenant data keys only.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tutor_cluster.privacy import VersionedSecrets

KEY_BYTES = 32
_NONCE = 12


class KeyEncryptionKeys(VersionedSecrets):
    """The vault's key-encryption keys (``version:base64key`` lines, the first current)."""

    WHAT = "vault key-encryption key"
    ROTATE = "tutor-cluster privacy rotate-kek"
    SETTING = "privacy.vault_kek_file"

    def key(self, version: str | None = None) -> bytes:
        """The AES-256 key of ``version`` (default: current), derived from its secret with HKDF-SHA256."""
        return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                    info=b"tutor-cluster vault kek").derive(self.secret(version))


class VaultCorrupt(RuntimeError):
    """A sealed value did not open: wrong key, or the value was altered or moved."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=8 * KEY_BYTES)


def context(*names: str) -> bytes:
    """Associated data binding a sealed value to its owner (tenant, learner, field)."""
    return "\x00".join(names).encode()


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, blob: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(blob[:_NONCE], blob[_NONCE:], aad)
    except (InvalidTag, ValueError):
        raise VaultCorrupt("a vault value did not open (wrong key, or altered/moved)") from None
