"""RouterCore: error mapping, fallbacks, cooldowns, the first-item deadline and budgets. The engine handles here
are stand-ins (an engine that dies, hangs or answers with a fixed text): a dead or hung GPU replica cannot be
produced on demand here, and these tests are about our routing logic. The real engine path is covered end to
end in tests/e2e."""

import asyncio
from pathlib import Path

import pytest

from tests.unit.stand_ins import DeadEngine as _DeadEngine
from tests.unit.stand_ins import FixedAnswer as _Answers
from tests.unit.stand_ins import Hangs as _Hangs
from tutor_cluster.config.settings import load_settings
from tutor_cluster.edge.signals import EdgeSignals
from tutor_cluster.routing.budgets import Subject
from tutor_cluster.routing.events import ErrorEvent, RouterEvent
from tutor_cluster.routing.router import CoreRequest, RouterCore


def _run(router: RouterCore, request: CoreRequest) -> list[RouterEvent]:
    async def collect():
        return [e async for batch in router.run(request) for e in batch]

    return asyncio.run(collect())


def test_a_failing_engine_becomes_a_503_event_not_an_exception() -> None:
    settings = load_settings()
    router = RouterCore(settings.routing, settings.catalogue, {"smollm2": _DeadEngine()})
    request = CoreRequest(request_id="r", messages=[{"role": "user", "content": "hi"}],
                          signals=EdgeSignals(intent="question", skill=None, complexity=0.1, text="hi"))
    events = _run(router, request)
    assert [e.type for e in events] == ["error"]
    assert events[-1].kind == "unavailable" and "ConnectionError" in events[-1].message
    assert events[-1].retry_after_s >= 1


def test_unknown_pinned_model_is_an_error_event() -> None:
    settings = load_settings()
    router = RouterCore(settings.routing, settings.catalogue, {"smollm2": _DeadEngine()})
    request = CoreRequest(request_id="r", messages=[{"role": "user", "content": "hi"}], model="nope",
                          signals=EdgeSignals(intent="question", skill=None, complexity=0.1, text="hi"))
    assert _run(router, request) == [ErrorEvent(kind="rejected", message="unknown model 'nope'")]


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _two_engines(tmp_path: Path, small, core, **routing) -> tuple[RouterCore, _Clock]:
    """Catalogue with tutor-small on engine 'small' and tutor-core on engine 'core'; tutor-core falls back to
    tutor-small."""
    settings = load_settings()
    cat = settings.catalogue.model_dump()
    cat["engines"] = {"small": cat["engines"]["smollm2"], "core": cat["engines"]["smollm2"]}
    for m in cat["models"]:
        m["engine"] = "small" if m["tier"] == "small" else "core"
    raw = {**settings.model_dump(), "catalogue": cat}
    raw["routing"] = {**raw["routing"], "fallbacks": {"tutor-core": ["tutor-small"]}, "cooldown_s": 30,
                      "first_token_timeout_s": 0.5,
                      "budgets": {"backend": "sqlite", "sqlite_path": str(tmp_path / "ledger.db")}, **routing}
    s2 = type(settings).model_validate(raw)
    clock = _Clock()
    return RouterCore(s2.routing, s2.catalogue, {"small": small, "core": core}, clock=clock), clock


def _core_request(**kw) -> CoreRequest:
    return CoreRequest(request_id="r", messages=[{"role": "user", "content": "why?"}], model=None,
                       signals=EdgeSignals(intent="question", skill=None, complexity=0.9, text="why?"), **kw)


def test_dead_core_falls_back_to_small_and_cools_down(tmp_path: Path) -> None:
    small, core = _Answers(), _Answers()
    core.remote = _DeadEngine().remote  # type: ignore[method-assign]
    router, clock = _two_engines(tmp_path, small, core)
    events = _run(router, _core_request())
    route, done = events[0], events[-1]
    assert route.type == "route" and route.model == "tutor-small" and "fallback to tutor-small" in route.reason
    assert done.type == "done" and done.model == "tutor-small" and done.tier == "small"
    assert done.cost == router._entry("tutor-small").cost(40, done.usage.completion_tokens)

    core_calls = []
    core.remote = lambda r: core_calls.append(r) or _DeadEngine().remote(r)  # type: ignore[method-assign]
    events = _run(router, _core_request())  # within the cooldown: core is not even called
    assert events[-1].model == "tutor-small" and core_calls == []
    assert "cooling down" in events[0].reason
    clock.now += 31  # after the cooldown core is tried again
    _run(router, _core_request())
    assert len(core_calls) == 1


def test_hung_engine_is_cancelled_at_the_deadline_and_the_chain_continues(tmp_path: Path) -> None:
    small, core = _Answers(), _Hangs()
    router, _ = _two_engines(tmp_path, small, core, first_token_timeout_s=0.2)
    events = _run(router, _core_request())
    assert core.cancelled and events[-1].type == "done" and events[-1].model == "tutor-small"


def test_everything_down_is_a_503_with_retry_after_the_cooldown(tmp_path: Path) -> None:
    router, clock = _two_engines(tmp_path, _DeadEngine(), _DeadEngine(), cooldown_s=12)
    events = _run(router, _core_request())
    assert [e.type for e in events] == ["error"]
    assert events[0].kind == "unavailable" and events[0].retry_after_s == 12
    clock.now += 5
    assert _run(router, _core_request())[0].retry_after_s == 7


@pytest.mark.parametrize("action, expect", [("reject", "error"), ("downgrade", "done")])
def test_budget_exhaustion_rejects_or_downgrades(tmp_path: Path, action: str, expect: str) -> None:
    budgets = {"backend": "sqlite", "sqlite_path": str(tmp_path / "b.db"),
               "rules": [{"scope": "class", "id": "c1", "limit": 0.003, "on_exhaustion": action}]}
    small, core = _Answers(), _Answers()
    router, _ = _two_engines(tmp_path, small, core, budgets=budgets)
    events = _run(router, _core_request(class_id="c1"))
    assert events[-1].type == expect
    if action == "reject":
        assert events[0].kind == "budget_exhausted" and 1 <= events[0].retry_after_s <= 86_400 and core.calls == 0
    else:
        assert events[0].model == "tutor-small" and "downgraded from tutor-core" in events[0].reason
        assert core.calls == 0 and small.calls == 1
    other = _run(router, _core_request(class_id="c2"))  # the rule names one class: others are not limited
    assert other[-1].type == "done" and other[-1].model == "tutor-core"


def _math_turn(mode: str, complexity: float = 0.3) -> CoreRequest:
    from tutor_cluster.routing.verify import VerifySpec

    return CoreRequest(request_id="r", messages=[{"role": "user", "content": "1/2 + 1/4?"}],
                       signals=EdgeSignals(intent="question", skill="fractions.add", complexity=complexity, text="?"),
                       verify=VerifySpec(kind="math", answer="3/4", mode=mode))


@pytest.mark.parametrize("mode, planted, escalated", [
    ("explain", "Common denominator 4: 2/4 + 1/4, so the answer is 2/6.", True),   # wrong stated answer
    ("explain", "Write 1/2 as 2/4; then the answer is 3/4.", False),                # right: it stands
    ("practice", "It is 1/2 + 1/4 = 3/4.", True),                                    # reveals the result
    ("practice", "What is 1/2 written in quarters?", False),                         # a hint: it stands
])
def test_cascade_verifies_the_cheap_answer(tmp_path: Path, mode: str, planted: str, escalated: bool) -> None:
    small, core = _Answers(planted), _Answers("Let us look at quarters together.")
    router, _ = _two_engines(tmp_path, small, core, policy="cascade")
    events = _run(router, _math_turn(mode))
    route, done = events[0], events[-1]
    text = "".join(e.text for e in events if e.type == "delta")
    assert small.calls == 1 and core.calls == (1 if escalated else 0)
    if escalated:
        assert done.model == "tutor-core" and "failed verification" in route.reason
        assert text.strip() == "Let us look at quarters together."
        small_cost = router._entry("tutor-small").cost(40, len(planted.split()))
        core_cost = router._entry("tutor-core").cost(40, done.usage.completion_tokens)
        assert done.cost == pytest.approx(small_cost + core_cost)  # the interaction pays both legs
    else:
        assert done.model == "tutor-small" and "verified" in route.reason and text.strip() == planted


def test_cascade_sends_very_complex_turns_straight_up(tmp_path: Path) -> None:
    small, core = _Answers(), _Answers()
    router, _ = _two_engines(tmp_path, small, core, policy="cascade")
    events = _run(router, _math_turn("explain", complexity=0.95))
    assert events[-1].model == "tutor-core" and small.calls == 0 and "directly" in events[0].reason


def test_every_answer_is_in_the_spend_ledger(tmp_path: Path) -> None:
    small, core = _Answers("The answer is 2/6."), _Answers("Quarters!")
    router, _ = _two_engines(tmp_path, small, core, policy="cascade")
    done = _run(router, _math_turn("explain").model_copy(update={"tenant": "acme", "learner_ref": "p-123",
                                                                 "training": True}))[-1]
    (entry,) = router._ledger.entries()
    assert entry["tenant"] == "acme" and entry["learner"] == "p-123" and entry["model"] == "tutor-core"
    assert entry["cost"] == done.cost and entry["small_ok"] is False and entry["policy"] == "cascade"
    assert entry["features"]["complexity"] == 0.3


def test_without_model_improvement_consent_the_ledger_keeps_the_spend_but_no_training_row(tmp_path: Path) -> None:
    router, _ = _two_engines(tmp_path, _Answers("The answer is 2/6."), _Answers("Quarters!"), policy="cascade")
    request = _math_turn("explain").model_copy(update={"tenant": "acme", "learner_ref": "p-9", "training": False})
    done = _run(router, request)[-1]
    (entry,) = router._ledger.entries()
    assert entry["cost"] == done.cost and entry["learner"] == "p-9"  # the spend is accounted
    assert entry["features"] == {} and entry["small_ok"] is None  # nothing the learned policy could train on


class _EndsEarly(_Answers):
    """A stand-in engine whose stream ends without a finish reason (what a dying engine process produced)."""

    def remote(self, _request):
        self.calls += 1

        async def stream():
            yield ["data: [DONE]\n\n"]

        return stream()


def test_a_stream_that_ends_without_finishing_is_a_failure_not_an_empty_answer(tmp_path: Path) -> None:
    small, core = _Answers(), _EndsEarly()
    router, _ = _two_engines(tmp_path, small, core)
    events = _run(router, _core_request())
    assert events[-1].type == "done" and events[-1].model == "tutor-small"  # fell back
    assert "tutor-core failed: EngineError" in events[0].reason


def test_a_client_that_leaves_mid_answer_is_charged_what_was_streamed_and_the_ledger_says_so(tmp_path: Path) -> None:
    budgets = {"backend": "sqlite", "sqlite_path": str(tmp_path / "b.db"),
               "rules": [{"scope": "tenant", "id": "acme", "limit": 5.0}]}
    long = " ".join(f"word{i}" for i in range(200))
    router, _ = _two_engines(tmp_path, _Answers(long), _Answers(long), budgets=budgets)

    async def leave_after_first_batches() -> int:
        stream = router.run(_core_request(tenant="acme"))
        seen = 0
        async for batch in stream:
            seen += len(batch)
            if seen >= 3:
                break
        await stream.aclose()  # what a disconnected client's cancelled stream does to the router's generator
        return seen

    assert asyncio.run(leave_after_first_batches()) >= 3
    spent = router._ledger.spent(Subject(tenant="acme"))["tenant:acme:day"]
    (entry,) = [e for e in router._ledger.entries() if e["tenant"] == "acme"]
    assert 0 < spent < router._worst_case(_core_request(), router._chain(router._entry("tutor-core")))
    assert entry["cost"] == pytest.approx(spent) and "left mid-answer" in entry["reason"]  # budget == ledger
