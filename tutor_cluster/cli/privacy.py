"""`tutor-cluster privacy ...`: the pseudonym secrets and the vault's key-encryption key — check them, rotate
them."""

from __future__ import annotations

import argparse
import sqlite3

import redis

from tutor_cluster.app.checks import check_pseudonym_keys, check_vault_keys
from tutor_cluster.cli.commands import CliError, _region_settings, _settings
from tutor_cluster.config.settings import ConfigError
from tutor_cluster.privacy import PseudonymKeys, rotate_key_file
from tutor_cluster.vault.backends import open_vault
from tutor_cluster.vault.crypto import KeyEncryptionKeys, VaultCorrupt


def _keys(settings) -> PseudonymKeys:  # noqa: ANN001
    try:
        return check_pseudonym_keys(settings, create=False)[0]
    except ConfigError as exc:
        raise CliError(str(exc), 2) from None


def privacy_rotate_key(args: argparse.Namespace) -> int:
    """A new current secret; the old ones stay for reading rows written under them. Restart the service after."""
    settings = _region_settings(args.config, args.region)
    keys = _keys(settings)
    version = rotate_key_file(settings.privacy.keys_path())
    print(f"pseudonym secrets: new current version {version} (was {keys.current}); restart the service to use it")
    return 0


def privacy_show(args: argparse.Namespace) -> int:
    """Versions of the pseudonym secrets (never the secrets)."""
    settings = _region_settings(args.config, args.region)
    keys = _keys(settings)
    print(f"{settings.privacy.keys_path()}: current {keys.current}; versions {', '.join(keys.versions)}")
    return 0


def privacy_rotate_kek(args: argparse.Namespace) -> int:
    """A new current key-encryption key; every tenant data key in this region's vault is re-wrapped with it (the
    learners' data is not re-encrypted: envelope encryption). Old versions stay in the file until removed."""
    settings = _region_settings(args.config, args.region)
    try:
        keks = check_vault_keys(settings, create=False)[0]
    except ConfigError as exc:
        raise CliError(str(exc), 2) from None
    path = settings.privacy.kek_path()
    version = rotate_key_file(path, KeyEncryptionKeys)
    where = "the region's Redis vault" if settings.privacy.vault_redis_url else str(settings.privacy.vault_path())
    try:
        vault = open_vault(settings.privacy, KeyEncryptionKeys.load(path))
        try:
            rewrapped = vault.rewrap()
        finally:
            vault.close()
    except (VaultCorrupt, redis.RedisError, sqlite3.Error) as exc:
        raise CliError(f"vault ({where}): {type(exc).__name__}: {exc}; the new key was added to {path}, nothing "
                       "re-wrapped", 1) from None
    print(f"vault key-encryption key: new current version {version} (was {keks.current}); {rewrapped} tenant data "
          f"key(s) re-wrapped; restart the service, then run this again before removing old versions from {path}")
    return 0


def retention_sweep(args: argparse.Namespace) -> int:
    """Delete learner data past its retention period (privacy.retention); one line of counts."""
    import json

    from tutor_cluster.pipelines.retention import sweep

    counts = sweep(_settings(args.config))
    errors = counts.pop("errors", {})
    print("retention: " + json.dumps(counts, sort_keys=True))
    if errors:
        raise CliError("retention: not swept: " + "; ".join(f"{k}: {v}" for k, v in sorted(errors.items())), 1)
    return 0
