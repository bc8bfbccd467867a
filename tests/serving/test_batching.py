"""Adaptive micro-batching: queued requests are merged; one job's failure is not another's."""

from __future__ import annotations

import asyncio
import threading

import pytest
from clv.serving.batching import MicroBatcher


def test_jobs_that_queue_up_are_merged_and_answered_in_order():
    calls: list[list[int]] = []
    gate = threading.Event()

    def double(items):
        gate.wait(5)
        calls.append(list(items))
        return [2 * i for i in items]

    async def main():
        batcher = MicroBatcher(double, max_items=5)
        first = asyncio.ensure_future(batcher.submit([1]))
        await asyncio.sleep(0.05)  # the first batch is running; the next ones queue up
        rest = [asyncio.ensure_future(batcher.submit([i, i + 10])) for i in (2, 3, 4)]
        await asyncio.sleep(0.05)
        gate.set()
        return await first, await asyncio.gather(*rest)

    first, rest = asyncio.run(main())
    assert first == [2]
    assert rest == [[4, 24], [6, 26], [8, 28]]
    assert calls == [[1], [2, 12, 3, 13], [4, 14]]  # merged up to max_items


def test_a_failing_job_does_not_fail_the_jobs_merged_with_it():
    gate = threading.Event()

    def check(items):
        gate.wait(5)
        if "bad" in items:
            raise ValueError("bad item")
        return list(items)

    async def main():
        batcher = MicroBatcher(check, max_items=100)
        first = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.05)
        good = asyncio.ensure_future(batcher.submit(["b"]))
        bad = asyncio.ensure_future(batcher.submit(["bad"]))
        await asyncio.sleep(0.05)
        gate.set()
        assert await first == ["a"]
        assert await good == ["b"]
        with pytest.raises(ValueError, match="bad item"):
            await bad

    asyncio.run(main())


def test_small_batches_run_in_the_event_loop_and_larger_ones_in_a_worker_thread():
    threads: list[int] = []

    def record(items):
        threads.append(threading.get_ident())
        if "bad" in items:
            raise ValueError("bad item")
        return list(items)

    async def main():
        batcher = MicroBatcher(record, max_items=100, inline_max_items=2)
        assert await batcher.submit([1, 2]) == [1, 2]
        assert await batcher.submit([1, 2, 3]) == [1, 2, 3]
        with pytest.raises(ValueError, match="bad item"):
            await batcher.submit(["bad"])  # an inline failure reaches its caller too
        assert await batcher.submit([4]) == [4]  # and the batcher keeps serving
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert threads[0] == loop_thread
    assert threads[1] != loop_thread
    assert threads[2] == threads[3] == loop_thread
