"""Settings of learner privacy: where the pseudonym secrets and the audit log are (schema)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tutor_cluster import constants


class PrivacyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pseudonym_keys_file: str | None = Field(default=None, description=(
        "Path of the pseudonym key file (one 'version:base64secret' per line, the first current; never a settings "
        "file, never logged). None: TUTOR_PSEUDONYM_KEYS_FILE, else ~/.cache/tutor-cluster/pseudonym-keys, which "
        "`tutor-cluster up` creates (mode 0600) when missing. In production mount it from a secret store at the "
        "same path on every node that runs a gateway replica."))

    audit_enabled: bool = Field(default=True, description=(
        "Keep the disclosure audit trail: every access to a learner's data (turns, views, preference changes) "
        "as a hash-chained record (`tutor-cluster audit verify`)."))
    audit_sqlite_path: str | None = Field(default=None, description=(
        "The audit log (SQLite, shared by the gateway replicas of one machine). None: "
        "~/.cache/tutor-cluster/audit.db. A Redis backend for several nodes is planned."))

    def audit_path(self) -> Path:
        return Path(self.audit_sqlite_path).expanduser() if self.audit_sqlite_path else constants.CACHE_DIR / "audit.db"

    def keys_path(self) -> Path:
        return Path(self.pseudonym_keys_file).expanduser() if self.pseudonym_keys_file else constants.PSEUDONYM_KEYS_FILE
