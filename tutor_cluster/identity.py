"""Who is calling: the principal an API key resolves to. Every tier below the API receives it explicitly."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True)

    key_id: str
    tenant: str
    role: str
    scopes: frozenset[str]
