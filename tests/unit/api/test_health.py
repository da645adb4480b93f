"""/readyz needs no auth, so the tiers it asks are asked at most once a second however many callers come
(tiers here are counting stand-ins called in-process; tests/e2e checks readiness of the real service)."""

from __future__ import annotations

import asyncio

from tests.unit.stand_ins import InProcess
from tutor_cluster.api.health import READY_CACHE_S, Health


class _Tier:
    def __init__(self) -> None:
        self.asked = 0

    async def ready(self) -> bool:
        self.asked += 1
        await asyncio.sleep(0.01)
        return True

    async def check_health(self) -> dict[str, bool]:
        return {"engine": True}


class _Router(_Tier):
    async def ready(self) -> dict[str, bool]:
        self.asked += 1
        return {"engine": True}


class _Learners:
    async def ready(self) -> bool:
        return True


def test_readiness_is_probed_at_most_once_per_interval() -> None:
    now = [100.0]
    edge, router = _Tier(), _Router()
    health = Health(InProcess(edge), InProcess(router), _Learners(), clock=lambda: now[0])  # type: ignore[arg-type]

    async def burst() -> list[bool]:
        return [ok for ok, _ in await asyncio.gather(*(health.readiness() for _ in range(50)))]

    async def scenario() -> None:  # one event loop, as in a replica
        assert await burst() == [True] * 50 and edge.asked == 1 and router.asked == 1
        now[0] += READY_CACHE_S / 2
        await burst()
        assert edge.asked == 1
        now[0] += READY_CACHE_S
        await burst()
        assert edge.asked == 2 and router.asked == 2

    asyncio.run(scenario())
