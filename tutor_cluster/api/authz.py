"""Route-level authorization: each route declares its rule in ``access/rules.py`` by ``allow("METHOD /path")``;
a role the rule does not list gets 403 before the route runs (a test checks every route has a rule)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from tutor_cluster.access.policy import check_route
from tutor_cluster.access.rules import RULES


def allow(rule: str) -> Any:
    """The dependency that enforces ``RULES[rule]`` for the caller's role."""
    if rule not in RULES:
        raise KeyError(f"no access rule {rule!r}: declare it in tutor_cluster/access/rules.py")

    async def check(request: Request) -> None:
        check_route(request.state.principal, rule)

    return Depends(check)
