"""Relations the access rules use, managed through the API: the teachers and learners of a class
(``/v1/classes``) and a guardian's children (``/v1/guardians``). All within the caller's tenant."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from tutor_cluster.access.relations import CLASS_LEARNERS, CLASS_TEACHERS, GUARDIAN_LEARNERS, Relations
from tutor_cluster.api.authz import allow
from tutor_cluster.api.protocol import ERRORS, ID_PATTERN
from tutor_cluster.errors import NotFound


class ClassView(BaseModel):
    class_id: str
    teachers: list[str]
    learners: list[str]


class GuardianView(BaseModel):
    subject: str
    learners: list[str]


def routes(relations: Relations, check_home: Callable[[str], None] = lambda _: None) -> APIRouter:
    """``check_home``: raises for a learner of another region (each region keeps only its learners' relations)."""
    router = APIRouter(tags=["relations"])

    async def class_view(tenant: str, class_id: str) -> ClassView:
        teachers, learners = await asyncio.gather(
            asyncio.to_thread(relations.members, tenant, CLASS_TEACHERS, class_id),
            asyncio.to_thread(relations.members, tenant, CLASS_LEARNERS, class_id))
        return ClassView(class_id=class_id, teachers=sorted(teachers), learners=sorted(learners))

    async def guardian_view(tenant: str, subject: str) -> GuardianView:
        learners = await asyncio.to_thread(relations.members, tenant, GUARDIAN_LEARNERS, subject)
        return GuardianView(subject=subject, learners=sorted(learners))

    async def change(http: Request, add: bool, kind: str, owner: str, member: str) -> None:
        if kind in (CLASS_LEARNERS, GUARDIAN_LEARNERS):
            check_home(member)
        fn = relations.add if add else relations.remove
        await asyncio.to_thread(fn, http.state.principal.tenant, kind, owner, member)

    @router.get("/v1/classes/{class_id}", response_model=ClassView, responses=ERRORS,
                dependencies=[allow("GET /v1/classes/{class_id}")])
    async def get_class(http: Request, class_id: str = Path(pattern=ID_PATTERN)) -> ClassView:
        """A class's teachers and learners (a teacher sees only the classes it teaches)."""
        principal = http.state.principal
        view = await class_view(principal.tenant, class_id)
        if principal.role == "teacher" and principal.key_id not in view.teachers:
            raise NotFound(f"unknown class {class_id!r}", field="class_id")
        return view

    @router.put("/v1/classes/{class_id}/teachers/{subject}", response_model=ClassView, responses=ERRORS,
                dependencies=[allow("PUT /v1/classes/{class_id}/teachers/{subject}")])
    async def add_teacher(http: Request, class_id: str = Path(pattern=ID_PATTERN), subject: str = Path(pattern=ID_PATTERN)) -> ClassView:
        """Make ``subject`` (a teacher key's id) a teacher of the class."""
        await change(http, True, CLASS_TEACHERS, class_id, subject)
        return await class_view(http.state.principal.tenant, class_id)

    @router.delete("/v1/classes/{class_id}/teachers/{subject}", response_model=ClassView, responses=ERRORS,
                   dependencies=[allow("DELETE /v1/classes/{class_id}/teachers/{subject}")])
    async def remove_teacher(http: Request, class_id: str = Path(pattern=ID_PATTERN), subject: str = Path(pattern=ID_PATTERN)) -> ClassView:
        await change(http, False, CLASS_TEACHERS, class_id, subject)
        return await class_view(http.state.principal.tenant, class_id)

    @router.put("/v1/classes/{class_id}/learners/{learner_id}", response_model=ClassView, responses=ERRORS,
                dependencies=[allow("PUT /v1/classes/{class_id}/learners/{learner_id}")])
    async def enrol(http: Request, class_id: str = Path(pattern=ID_PATTERN), learner_id: str = Path(pattern=ID_PATTERN)) -> ClassView:
        """Enrol a learner: the class's teachers may then work with it."""
        await change(http, True, CLASS_LEARNERS, class_id, learner_id)
        return await class_view(http.state.principal.tenant, class_id)

    @router.delete("/v1/classes/{class_id}/learners/{learner_id}", response_model=ClassView, responses=ERRORS,
                   dependencies=[allow("DELETE /v1/classes/{class_id}/learners/{learner_id}")])
    async def unenrol(http: Request, class_id: str = Path(pattern=ID_PATTERN), learner_id: str = Path(pattern=ID_PATTERN)) -> ClassView:
        await change(http, False, CLASS_LEARNERS, class_id, learner_id)
        return await class_view(http.state.principal.tenant, class_id)

    @router.get("/v1/guardians/{subject}", response_model=GuardianView, responses=ERRORS,
                dependencies=[allow("GET /v1/guardians/{subject}")])
    async def get_guardian(http: Request, subject: str = Path(pattern=ID_PATTERN)) -> GuardianView:
        """A guardian's children (a guardian sees only its own)."""
        principal = http.state.principal
        if principal.role == "guardian" and principal.key_id != subject:
            raise NotFound(f"unknown guardian {subject!r}", field="subject")
        return await guardian_view(principal.tenant, subject)

    @router.put("/v1/guardians/{subject}/learners/{learner_id}", response_model=GuardianView, responses=ERRORS,
                dependencies=[allow("PUT /v1/guardians/{subject}/learners/{learner_id}")])
    async def link(http: Request, subject: str = Path(pattern=ID_PATTERN), learner_id: str = Path(pattern=ID_PATTERN)) -> GuardianView:
        """Link a guardian (a guardian key's id) to a learner."""
        await change(http, True, GUARDIAN_LEARNERS, subject, learner_id)
        return await guardian_view(http.state.principal.tenant, subject)

    @router.delete("/v1/guardians/{subject}/learners/{learner_id}", response_model=GuardianView, responses=ERRORS,
                   dependencies=[allow("DELETE /v1/guardians/{subject}/learners/{learner_id}")])
    async def unlink(http: Request, subject: str = Path(pattern=ID_PATTERN), learner_id: str = Path(pattern=ID_PATTERN)) -> GuardianView:
        await change(http, False, GUARDIAN_LEARNERS, subject, learner_id)
        return await guardian_view(http.state.principal.tenant, subject)

    return router
