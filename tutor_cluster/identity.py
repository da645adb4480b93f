"""Who is calling: the principal an API key resolves to. Every tier below the API receives it explicitly."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Who a caller is, which decides the learners it may touch (``access/``):
#: learner — one learner (``learner_id``); guardian — the learners linked to it; teacher — the learners of the
#: classes it teaches; institution_admin, service (a trusted app acting for learners) — every learner of the
#: tenant; platform_admin — the same, plus operations routes; ml_job — pseudonymous analytics only, no learner.
Role = Literal["learner", "guardian", "teacher", "institution_admin", "service", "ml_job", "platform_admin"]
ROLES: tuple[Role, ...] = ("learner", "guardian", "teacher", "institution_admin", "service", "ml_job", "platform_admin")


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True)

    key_id: str = Field(description="The caller's subject: an API key's id.")
    tenant: str
    role: Role
    scopes: frozenset[str]
    learner_id: str | None = Field(default=None, description="For role 'learner': the one learner it is.")


#: What a tenant name may be (API keys, JWT claims): it is part of every learner key.
TENANT_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
#: Separates tenant and learner id in a learner key (learner ids cannot contain it).
KEY_SEPARATOR = "/"


def learner_key(tenant: str, learner_id: str) -> str:
    """The key of a learner's records in every store: tenant-scoped, so the same learner id in two tenants is two
    learners, and a caller can only ever name learners of its own tenant."""
    if KEY_SEPARATOR in tenant or KEY_SEPARATOR in learner_id:
        raise ValueError(f"tenant and learner ids cannot contain {KEY_SEPARATOR!r}")
    return f"{tenant}{KEY_SEPARATOR}{learner_id}"


def split_learner_key(key: str) -> tuple[str | None, str]:
    """(tenant, learner id) of a learner key; tenant None for a record written before tenancy."""
    tenant, sep, learner_id = key.partition(KEY_SEPARATOR)
    return (tenant, learner_id) if sep else (None, key)
