import asyncio

import pytest

from tutor_cluster.core.batching import eager_batches


async def _timed_source(delays: list[float], fail_at: int | None = None):
    for i, d in enumerate(delays):
        await asyncio.sleep(d)
        if fail_at == i:
            raise RuntimeError("engine died")
        yield i


async def _collect(source, interval: float) -> list[tuple[float, list[int]]]:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    return [(loop.time() - t0, batch) async for batch in eager_batches(source, interval)]


def test_first_item_is_not_held_and_later_items_are_grouped() -> None:
    # 1 item at once, then 20 items 5 ms apart, batched at 50 ms.
    out = asyncio.run(_collect(_timed_source([0.0] + [0.005] * 20), 0.05))
    first_at, first = out[0]
    assert first == [0] and first_at < 0.04  # a tick batcher would hold it for the whole interval
    assert [i for _, b in out for i in b] == list(range(21))  # nothing lost, order kept
    assert len(out) < 10  # grouped, not one item per yield


def test_zero_interval_forwards_each_item() -> None:
    out = asyncio.run(_collect(_timed_source([0.0] * 5), 0))
    assert [b for _, b in out] == [[0], [1], [2], [3], [4]]


def test_source_error_propagates_after_earlier_items() -> None:
    async def run() -> list[int]:
        seen = []
        with pytest.raises(RuntimeError, match="engine died"):
            async for batch in eager_batches(_timed_source([0.0, 0.0, 0.0], fail_at=2), 0.01):
                seen.extend(batch)
        return seen

    assert asyncio.run(run()) == [0, 1]


def test_llmserver_still_has_the_hook_we_override() -> None:
    from ray.serve.llm import LLMServer

    assert callable(getattr(LLMServer, "_batch_output_stream", None)), "ray.serve.llm changed: see core/engine.py"
