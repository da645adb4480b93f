"""Stand-ins for what cannot be produced on demand in a unit test: an engine replica that dies, hangs or answers
with a fixed text (a GPU replica's failure modes), and tiers called in-process instead of through Serve handles.
The real engine, Serve and Ray paths are covered end to end in tests/e2e."""

import asyncio
import inspect
import json
from typing import Any

from tutor_cluster.config.settings import Settings
from tutor_cluster.learner.memory import LearnerMemoryActor
from tutor_cluster.privacy import PseudonymKeys
from tutor_cluster.telemetry.metrics import Metrics
from tutor_cluster.vault.crypto import KeyEncryptionKeys


class Engine:
    """The part of a Serve handle the router uses: ``handle.options(stream=True).chat.remote(request)``, and the
    health and stats calls readiness and the admin route make."""

    calls = 0

    def options(self, **_):
        return self

    @property
    def chat(self):
        return self

    @property
    def check_health(self):
        return _Method(lambda: None)

    @property
    def stats(self):
        return _Method(lambda: {"requests": self.calls})


class DeadEngine(Engine):
    """Behaves like a Serve handle whose replica died after the call was accepted."""

    @property
    def check_health(self):
        def dead() -> None:
            raise ConnectionError("replica gone")

        return _Method(dead)

    def remote(self, _request):
        async def stream():
            raise ConnectionError("replica gone")
            yield  # pragma: no cover

        return stream()


class FixedAnswer(Engine):
    """A stand-in engine that streams a fixed answer in the LLMServer's SSE framing; counts its calls."""

    def __init__(self, text: str = "Try a common denominator.") -> None:
        self.text, self.calls = text, 0
        self.requests: list[Any] = []  # what the engine was asked: the prompt as it crossed the engine boundary

    def remote(self, request):
        self.calls += 1
        self.requests.append(request)
        chunks = [{"choices": [{"delta": {"content": w + " "}, "finish_reason": None}]} for w in self.text.split()]
        chunks.append({"choices": [{"delta": {}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 40, "completion_tokens": len(chunks)}})

        async def stream():
            for c in chunks:
                yield [f"data: {json.dumps(c)}\n\n"]
            yield ["data: [DONE]\n\n"]

        return stream()


class Hangs(FixedAnswer):
    """A stand-in engine whose replica accepted the call and never answers."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = False

    def remote(self, _request):
        self.calls += 1
        engine = self

        class _Stream:
            def __aiter__(self):
                return self

            async def __anext__(self):
                await asyncio.sleep(3600)

            def cancel(self):
                engine.cancelled = True

        return _Stream()


class _Method:
    def __init__(self, fn: Any) -> None:
        self._fn = fn

    def options(self, **_: Any) -> "_Method":
        return self

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        """Like a Serve handle call: an async generator streams; anything else is awaitable."""
        out = self._fn(*args, **kwargs)
        if inspect.isasyncgen(out):
            return out

        async def value() -> Any:
            return await out if inspect.isawaitable(out) else out

        return value()


class InProcess:
    """A tier object called the way a Serve handle is (``handle.method.remote(...)``), in this process."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> _Method:
        return _Method(getattr(self._target, name))


class RecordingMetrics(Metrics):
    """Metrics that keep what was recorded (Ray's metrics API needs a running Ray)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, float, dict[str, str]]] = []

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        self.seen.append((name, value, labels))

    def observe(self, name: str, value: float, **labels: str) -> None:
        self.seen.append((name, value, labels))


class InProcessMemory:
    """LearnerMemory's client interface over one in-process actor."""

    def __init__(self, settings: Settings) -> None:
        self.actor = LearnerMemoryActor(settings.learner, settings.privacy.retention)
        self.actors = [InProcess(self.actor)]

    def get(self, learner_id: str) -> Any:
        return self.actors[0].get.remote(learner_id)

    def apply(self, learner_id: str, update: Any) -> Any:
        return self.actors[0].apply.remote(learner_id, update)

    def forget(self, learner_id: str) -> Any:
        return self.actors[0].forget.remote(learner_id)


#: Pseudonym secrets for tests (services read a key file in production; see tutor_cluster/privacy.py).
TEST_PSEUDONYMS = PseudonymKeys([("t1", b"test-secret-" * 3)])
#: The vault's key-encryption key in unit tests (the real file-based key is exercised end to end).
TEST_KEKS = KeyEncryptionKeys([("v1", b"test-kek-bytes-" * 3)])
