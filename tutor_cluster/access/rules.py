"""The role × route table: which roles may call each route, and whether the route touches one learner (then the
object-level check of ``policy.py`` decides too). Declared once; the API enforces it, the docs are generated from
it (``python -m tutor_cluster.access.rules`` writes docs/roles.md) and a test walks every cell."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from tutor_cluster.identity import ROLES, Role

EVERYONE_BUT_ML: frozenset[Role] = frozenset(r for r in ROLES if r != "ml_job")
TENANT_WIDE: frozenset[Role] = frozenset({"institution_admin", "service", "platform_admin"})
MANAGERS: frozenset[Role] = TENANT_WIDE


@dataclass(frozen=True)
class RouteRule:
    roles: frozenset[Role]
    learner: bool  # the route reads or writes one learner: the object-level check applies
    what: str


RULES: dict[str, RouteRule] = {
    "POST /v1/tutor/turns": RouteRule(EVERYONE_BUT_ML, True, "a tutoring turn for the body's learner_id"),
    "GET /v1/learners/{learner_id}": RouteRule(EVERYONE_BUT_ML, True, "a learner's memory"),
    "PATCH /v1/learners/{learner_id}/preferences": RouteRule(
        frozenset({"learner", "guardian", *TENANT_WIDE}), True, "change a learner's preferences"),
    "GET /v1/learners/{learner_id}/next-exercise": RouteRule(EVERYONE_BUT_ML, True, "a learner's next exercise"),
    "GET /v1/learners/{learner_id}/audit": RouteRule(
        frozenset({"learner", "guardian", "institution_admin", "platform_admin"}), True,
        "who accessed a learner's data, when and why (FERPA §99.32)"),
    "POST /v1/learners": RouteRule(TENANT_WIDE, False, "register a learner: personal data into the region's vault"),
    "GET /v1/learners/{learner_id}/consent": RouteRule(
        frozenset({"learner", "guardian", *TENANT_WIDE}), True, "a learner's consent scopes and their history"),
    "PUT /v1/learners/{learner_id}/consent": RouteRule(
        frozenset({"learner", "guardian", "institution_admin"}), True,
        "grant or revoke consent scopes (below the consent age: a guardian or the school)"),
    "GET /v1/learners/{learner_id}/export": RouteRule(
        frozenset({"learner", "guardian", "institution_admin", "platform_admin"}), True,
        "everything kept about a learner, as one JSON document (GDPR Art. 20)"),
    "DELETE /v1/learners/{learner_id}": RouteRule(
        frozenset({"learner", "guardian", *TENANT_WIDE}), True,
        "erase a learner: vault, memory, relations; their key destroyed (GDPR Art. 17)"),
    "POST /v1/chat/completions": RouteRule(EVERYONE_BUT_ML, False, "OpenAI chat (no learner memory)"),
    "GET /v1/models": RouteRule(EVERYONE_BUT_ML, False, "the model catalogue"),
    "GET /v1/models/{model_id}": RouteRule(EVERYONE_BUT_ML, False, "one model"),
    "GET /v1/curriculum/search": RouteRule(EVERYONE_BUT_ML, False, "search the curriculum"),
    "GET /v1/admin/stats": RouteRule(frozenset({"platform_admin"}), False, "per-tier counters of the deployment"),
    "GET /v1/classes/{class_id}": RouteRule(frozenset({"teacher", *MANAGERS}), False,
                                            "a class's teachers and learners (teachers: their own classes)"),
    "PUT /v1/classes/{class_id}/teachers/{subject}": RouteRule(MANAGERS, False, "assign a teacher to a class"),
    "DELETE /v1/classes/{class_id}/teachers/{subject}": RouteRule(MANAGERS, False, "remove a teacher"),
    "PUT /v1/classes/{class_id}/learners/{learner_id}": RouteRule(MANAGERS, False, "enrol a learner"),
    "DELETE /v1/classes/{class_id}/learners/{learner_id}": RouteRule(MANAGERS, False, "unenrol a learner"),
    "GET /v1/guardians/{subject}": RouteRule(frozenset({"guardian", *MANAGERS}), False,
                                             "a guardian's children (guardians: their own)"),
    "PUT /v1/guardians/{subject}/learners/{learner_id}": RouteRule(MANAGERS, False, "link a guardian to a learner"),
    "DELETE /v1/guardians/{subject}/learners/{learner_id}": RouteRule(MANAGERS, False, "unlink them"),
}

LEARNER_SCOPE = {
    "learner": "only itself (the key's `learner_id`)",
    "guardian": "the learners linked to it (`PUT /v1/guardians/{subject}/learners/{id}`)",
    "teacher": "the learners enrolled in a class it teaches",
    "institution_admin": "every learner of its tenant",
    "service": "every learner of its tenant (a trusted app acting for them)",
    "ml_job": "none (pseudonymous analytics exports only)",
    "platform_admin": "every learner of its tenant; operations routes",
}


def markdown() -> str:
    """docs/roles.md, generated from :data:`RULES`."""
    head = "| route | " + " | ".join(ROLES) + " | what |"
    lines = ["# Roles and routes", "",
             "Generated from `tutor_cluster/access/rules.py` by `python -m tutor_cluster.access.rules` — do not edit.",
             "", "A key's tenant bounds everything: no role reaches another tenant's learners (404, as for a learner "
             "that does not exist). ✓ = allowed; ✓ᴸ = allowed for the learners the role may touch (below), "
             "else 404; — = 403.", "", head, "|" + "---|" * (len(ROLES) + 2)]
    for route, rule in RULES.items():
        cells = [("✓ᴸ" if rule.learner else "✓") if role in rule.roles else "—" for role in ROLES]
        lines.append(f"| `{route}` | " + " | ".join(cells) + f" | {rule.what} |")
    lines += ["", "Learners each role may touch:", ""]
    lines += [f"- **{role}**: {LEARNER_SCOPE[role]}" for role in ROLES]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
