"""RouterCore's error mapping. The engine handle here is a stand-in object (a unit test of our own mapping);
the real engine path is covered end to end in tests/integration."""

import asyncio

from tutor_cluster.config.settings import load_settings
from tutor_cluster.edge.signals import EdgeSignals
from tutor_cluster.routing.router import CoreRequest, RouterCore


class _DeadEngine:
    """Behaves like a Serve handle whose replica died after the call was accepted."""

    def options(self, **_):
        return self

    @property
    def chat(self):
        return self

    def remote(self, _request):
        async def stream():
            raise ConnectionError("replica gone")
            yield  # pragma: no cover

        return stream()


def _run(router: RouterCore, request: CoreRequest) -> list[dict]:
    async def collect():
        return [e async for batch in router.run(request) for e in batch]

    return asyncio.run(collect())


def test_a_failing_engine_becomes_a_503_event_not_an_exception() -> None:
    settings = load_settings()
    router = RouterCore(settings.routing, settings.catalogue, {"smollm2": _DeadEngine()})
    request = CoreRequest(request_id="r", messages=[{"role": "user", "content": "hi"}],
                          signals=EdgeSignals(intent="question", skill=None, complexity=0.1, text="hi"))
    events = _run(router, request)
    assert [e["type"] for e in events] == ["route", "error"]
    assert events[-1]["status"] == 503 and "ConnectionError" in events[-1]["message"]


def test_unknown_pinned_model_is_an_error_event() -> None:
    settings = load_settings()
    router = RouterCore(settings.routing, settings.catalogue, {"smollm2": _DeadEngine()})
    request = CoreRequest(request_id="r", messages=[{"role": "user", "content": "hi"}], model="nope",
                          signals=EdgeSignals(intent="question", skill=None, complexity=0.1, text="hi"))
    assert _run(router, request) == [{"type": "error", "status": 404, "message": "unknown model 'nope'"}]
