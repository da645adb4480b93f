"""Which vault a region's settings name: SQLite (one machine's gateways) or Redis (gateways on several nodes)."""

from __future__ import annotations

from tutor_cluster.config.privacy import PrivacyConfig
from tutor_cluster.vault.crypto import KeyEncryptionKeys
from tutor_cluster.vault.redis_store import RedisVault
from tutor_cluster.vault.store import Vault


def open_vault(privacy: PrivacyConfig, keks: KeyEncryptionKeys) -> Vault | RedisVault:
    """The region's vault: Redis when ``privacy.vault_redis_url``, else the SQLite file."""
    if privacy.vault_redis_url:
        return RedisVault(privacy.vault_redis_url, keks, prefix=privacy.vault_redis_prefix)
    return Vault(privacy.vault_path(), keks)
