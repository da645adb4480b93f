"""Checks of a settings file that need more than its schema: the named policies exist and build (a ``learned``
policy reads its model file), and the learner store holds no records from before tenancy. Loading settings
builds nothing; the CLI and the app builder run these."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from tutor_cluster.config.settings import ConfigError, Settings
from tutor_cluster.learner import policies as learner_policies
from tutor_cluster.privacy import PseudonymKeyError, PseudonymKeys, VersionedSecrets, ensure_key_file
from tutor_cluster.routing.policies import build_policy
from tutor_cluster.vault.crypto import KeyEncryptionKeys

S = TypeVar("S", bound=VersionedSecrets)


def check_settings(settings: Settings, source: str = "settings") -> Settings:
    """``settings`` unchanged, or :class:`ConfigError` naming ``source`` and the key at fault."""
    try:
        build_policy(settings.routing, settings.catalogue)
    except ValueError as exc:
        raise ConfigError(f"{source}: routing.policy: {exc}") from None
    try:
        learner_policies.get(settings.learner.next_exercise_policy)
    except ValueError as exc:
        raise ConfigError(f"{source}: learner.next_exercise_policy: {exc}") from None
    return settings


MIGRATE_HINT = "tutor-cluster learner migrate-tenancy --tenant TENANT [--region REGION]"


def check_learner_store(settings: Settings, source: str = "settings") -> str | None:
    """:class:`ConfigError` when the learner store holds learners written before tenancy (keyed by learner id
    alone: no tenant could see them, and the operator must say whose they are). Returns a warning instead when
    the store cannot be reached (the service starts; memory calls answer 503 until it is back)."""
    from tutor_cluster.learner.stores import open_store

    try:
        store = open_store(settings.learner.store)
        try:
            legacy = store.legacy_keys()
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 - an unreachable store is the service's problem to report, later
        return f"learner store not checked for pre-tenancy records: {type(exc).__name__}: {exc}"
    if legacy:
        raise ConfigError(f"{source}: learner.store holds {len(legacy)} learner(s) from before tenancy "
                          f"(e.g. {legacy[0]!r}); assign them to their tenant first: {MIGRATE_HINT}")
    return None


def _secrets(kind: type[S], path: Path, configured: bool, setting: str, create: bool) -> tuple[S, bool]:
    created = create and not configured and ensure_key_file(path)
    try:
        return kind.load(path), created
    except PseudonymKeyError as exc:
        raise ConfigError(f"{setting}: {exc}") from None


def check_pseudonym_keys(settings: Settings, *, create: bool) -> tuple[PseudonymKeys, bool]:
    """The pseudonym secrets, or :class:`ConfigError` when they are missing or malformed; with ``create``, the
    default file is made first when missing (local mode; a configured path is never created). Returns whether it
    was created."""
    p = settings.privacy
    return _secrets(PseudonymKeys, p.keys_path(), p.configured("pseudonym_keys_file"), "privacy.pseudonym_keys_file",
                    create)


def check_vault_keys(settings: Settings, *, create: bool) -> tuple[KeyEncryptionKeys, bool]:
    """The vault's key-encryption keys, as :func:`check_pseudonym_keys`."""
    p = settings.privacy
    return _secrets(KeyEncryptionKeys, p.kek_path(), p.configured("vault_kek_file"), "privacy.vault_kek_file", create)


def check_secret_files(settings: Settings, *, create: bool) -> list[Path]:
    """Both secret files (the gateway refuses to start without them); returns the ones created."""
    made = [check_pseudonym_keys(settings, create=create)[1], check_vault_keys(settings, create=create)[1]]
    return [path for path, new in zip((settings.privacy.keys_path(), settings.privacy.kek_path()), made, strict=True)
            if new]
