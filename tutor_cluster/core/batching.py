"""Stream batching that never holds the first chunk.

Ray's ``Batcher`` (ray.serve.llm) yields on a fixed tick, so the first token waits for up to one interval
(default 50 ms: the time-to-first-token overhead reported in ray-project/ray#59681). With interval 0 it
forwards every token as its own Ray streaming item, which costs throughput when many streams share few
cores. :func:`eager_batches` gets both: the first item goes out at once, later items are grouped so that
at most one batch leaves per interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


async def eager_batches(source: AsyncIterator[T], interval_s: float) -> AsyncIterator[list[T]]:
    """Yield lists of items from ``source``: the first as soon as it arrives, then at most one list per
    ``interval_s``. Errors from ``source`` propagate after the items read before them."""
    if interval_s <= 0:
        async for item in source:
            yield [item]
        return
    queue: list[T] = []
    wake = asyncio.Event()
    finished = asyncio.Event()

    async def read() -> None:
        try:
            async for item in source:
                queue.append(item)
                wake.set()
        finally:
            finished.set()
            wake.set()

    reader = asyncio.create_task(read())
    loop = asyncio.get_running_loop()
    last = float("-inf")
    try:
        while True:
            await wake.wait()
            pause = last + interval_s - loop.time()
            if pause > 0 and not finished.is_set():
                try:
                    await asyncio.wait_for(finished.wait(), pause)
                except asyncio.TimeoutError:
                    pass
            wake.clear()
            if queue:
                batch, queue[:] = list(queue), []
                last = loop.time()
                yield batch
            if finished.is_set() and not queue:
                reader.result()  # re-raise the source's error, if any
                return
    finally:
        if not reader.done():
            reader.cancel()
