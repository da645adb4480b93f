"""What one API interaction leaves behind for operators and analysts: metrics (no personal data in labels)
and the turn's analytics event (learner and session as keyed pseudonyms: ``privacy.py``)."""

from __future__ import annotations

import time

from tutor_cluster.learner.context import LearnerContext
from tutor_cluster.privacy import PseudonymKeys
from tutor_cluster.routing.events import DoneEvent
from tutor_cluster.telemetry.events import EventSink
from tutor_cluster.telemetry.metrics import Metrics
from tutor_cluster.turns.learners import LearnerRef
from tutor_cluster.turns.types import TurnRequest, TurnResult


class TurnRecorder:
    def __init__(self, metrics: Metrics, events: EventSink, pseudonyms: PseudonymKeys) -> None:
        self.metrics = metrics
        self.events = events
        self.pseudonyms = pseudonyms

    def model(self, done: DoneEvent) -> None:
        """Tokens, cost, TTFT and alerts of one model interaction (the router's done event)."""
        model, m = done.model, self.metrics
        m.inc("tutor_tokens", done.usage.prompt_tokens, model=model, kind="prompt")
        m.inc("tutor_tokens", done.usage.completion_tokens, model=model, kind="completion")
        m.inc("tutor_cost", done.cost, model=model, tier=done.tier)
        if done.timings_ms.core_ttft is not None:
            m.observe("tutor_ttft_seconds", done.timings_ms.core_ttft / 1000, model=model)
        for rule in done.budget_alerts:
            m.inc("tutor_budget_alerts", rule=rule)

    def turn(self, r: TurnResult, after: LearnerContext | None, done: DoneEvent | None = None, *,
             body: TurnRequest, learner: LearnerRef) -> None:
        """Metrics of one tutoring turn (labels: tier, model, skill — no learner ids) and, with the learner's
        ``analytics`` consent, its analytics event (pseudonymous learner and session)."""
        self._metrics_of(r, after, done)
        change = r.mastery
        state = after.skills.get(r.skill) if after and r.skill else None
        if "analytics" not in learner.scopes:  # the learner (or their guardian) did not consent to analytics
            return
        tenant = learner.tenant
        self.events.add({
            "at": time.time(), "turn_id": r.turn_id, "tenant": tenant, "learner": learner.pseudonym,
            "session": self.pseudonyms.pseudonym(tenant, f"session:{body.session_id}"), "skill": r.skill,
            "intent": r.intent, "exercise_id": body.exercise_id, "tier": r.tier, "model": r.model,
            "correct": r.check.correct if r.check else None, "misconceptions": r.check.misconceptions if r.check else [],
            "hint": r.intent == "hint_request" or (r.tier == "edge" and "Hint:" in r.reply),
            "mastery_before": change.before if change else None, "mastery_after": change.after if change else None,
            "mastered": change.mastered if change else None, "attempts": state.attempts if state else None,
            "cost": r.cost.amount, "prompt_tokens": r.usage.prompt_tokens,
            "completion_tokens": r.usage.completion_tokens, "citations": len(r.citations),
            "latency_total_ms": r.latency_ms.get("total"), "latency_edge_ms": r.latency_ms.get("edge"),
            "latency_core_ms": r.latency_ms.get("core"),
        })

    def _metrics_of(self, r: TurnResult, after: LearnerContext | None, done: DoneEvent | None) -> None:
        m = self.metrics
        m.inc("tutor_turns", tier=r.tier, model=r.model or "-")
        for tier, ms in r.latency_ms.items():
            if ms is not None and tier not in ("total", "core_ttft"):
                m.observe("tutor_tier_latency_seconds", ms / 1000, tier=tier)
        if done is not None:
            self.model(done)
        m.inc("tutor_retrieval_passages", len(r.citations))
        skill = r.skill or "unknown"
        if r.check is not None and r.check.correct is not None:
            m.inc("tutor_attempts", skill=skill, correct=str(r.check.correct).lower())
            for tag in r.check.misconceptions:
                m.inc("tutor_misconceptions", skill=skill, tag=tag)
        if r.intent == "hint_request" or (r.tier == "edge" and "Hint:" in r.reply):
            m.inc("tutor_hints", skill=skill)
        change = r.mastery
        if change is not None and change.mastered and change.before < change.threshold:
            m.inc("tutor_mastery_transitions", skill=change.skill)
            state = after.skills.get(change.skill) if after else None
            if state is not None:
                m.observe("tutor_attempts_to_mastery", state.attempts, skill=change.skill)
