"""The object-level check: may this principal touch this learner? Always within the principal's tenant (learner
keys are built from it); within it, by role and the class and guardian relations."""

from __future__ import annotations

import asyncio

from tutor_cluster.access.relations import CLASS_LEARNERS, CLASS_TEACHERS, GUARDIAN_LEARNERS, Relations
from tutor_cluster.access.rules import RULES, TENANT_WIDE
from tutor_cluster.errors import Forbidden, NotFound
from tutor_cluster.identity import Principal


class Access:
    def __init__(self, relations: Relations | None) -> None:
        self.relations = relations

    def may_touch(self, principal: Principal, learner_id: str) -> bool:
        role, tenant = principal.role, principal.tenant
        if role in TENANT_WIDE:
            return True
        if role == "learner":
            return principal.learner_id == learner_id
        if self.relations is None or role not in ("guardian", "teacher"):
            return False
        if role == "guardian":
            return learner_id in self.relations.members(tenant, GUARDIAN_LEARNERS, principal.key_id)
        taught = self.relations.owners(tenant, CLASS_TEACHERS, principal.key_id)
        return bool(taught & self.relations.owners(tenant, CLASS_LEARNERS, learner_id))

    async def check_learner(self, principal: Principal, learner_id: str) -> None:
        """:class:`NotFound` — exactly what an unknown learner gets — unless the principal may touch it."""
        if principal.role in TENANT_WIDE or principal.role in ("learner", "ml_job"):
            allowed = self.may_touch(principal, learner_id)  # no store to ask
        else:
            allowed = await asyncio.to_thread(self.may_touch, principal, learner_id)
        if not allowed:
            raise NotFound(f"unknown learner {learner_id!r}", field="learner_id")


def check_route(principal: Principal, rule: str) -> None:
    """:class:`Forbidden` unless the principal's role may call the route (``RULES``)."""
    if principal.role not in RULES[rule].roles:
        raise Forbidden(f"role {principal.role!r} may not call {rule} (docs/roles.md)", code="role_not_allowed")
