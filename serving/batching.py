"""Adaptive micro-batching without a fixed delay: requests that arrive while a batch is being
scored are scored together in the next one.

Why not BentoML's `batchable=True` dispatcher: measured on this service (benchmarks/
serving_bench.py) it made single-customer requests slower (p50 178 ms vs 20 ms at 50 req/s with
features) and batches of 1,000 twice as slow, because it waits for more requests in proportion
to the average wait it has seen, and fits one cost model to jobs of 1 and of 1,000 customers.
Here a batch never waits: the batch size grows only when requests queue up behind a running
batch, which is when merging them pays (one DuckDB feature query instead of many).

A merged batch that fails is retried job by job, so one request's failure is never another's.

Small batches (at most `inline_max_items`) run in the event loop itself: a hop to a worker
thread costs more than scoring a few customers does, and while that thread computes, the
event loop and the thread take turns on the GIL (each waits up to the 5 ms switch interval).
Larger batches go to one worker thread, so the loop keeps accepting requests meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio
import anyio.to_thread

logger = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass
class _Job(Generic[In, Out]):
    items: Sequence[In]
    future: asyncio.Future[list[Out]]


class MicroBatcher(Generic[In, Out]):
    """Run `fn(items) -> outputs` (one output per item) in a worker thread, one batch at a time.

    max_items bounds a merged batch; a single larger job still runs alone. Batches of at
    most inline_max_items run in the event loop's thread (see the module docstring).
    """

    def __init__(
        self,
        fn: Callable[[Sequence[In]], list[Out]],
        max_items: int,
        inline_max_items: int = 0,
    ) -> None:
        self.fn = fn
        self.max_items = max_items
        self.inline_max_items = inline_max_items
        self._queue: list[_Job[In, Out]] = []
        self._running = False
        self._limiter: anyio.CapacityLimiter | None = None
        self._task: asyncio.Task[None] | None = None

    async def submit(self, items: Sequence[In]) -> list[Out]:
        loop = asyncio.get_running_loop()
        job: _Job[In, Out] = _Job(items, loop.create_future())
        self._queue.append(job)
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._drain())  # kept: tasks are weakly referenced
        return await job.future

    def _take(self) -> list[_Job[In, Out]]:
        first = self._queue.pop(0)
        taken, size = [first], len(first.items)
        while self._queue and size + len(self._queue[0].items) <= self.max_items:
            size += len(self._queue[0].items)
            taken.append(self._queue.pop(0))
        return taken

    async def _drain(self) -> None:
        try:
            while self._queue:
                jobs = self._take()
                await self._run(jobs)
        finally:
            self._running = False

    async def _call(self, items: Sequence[In]) -> list[Out]:
        if len(items) <= self.inline_max_items:
            return self.fn(items)
        if self._limiter is None:  # created in the event loop that uses it
            self._limiter = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(self.fn, items, limiter=self._limiter)

    async def _run(self, jobs: list[_Job[In, Out]]) -> None:
        merged = [item for job in jobs for item in job.items]
        try:
            outputs = await self._call(merged)
        except Exception as exc:
            if len(jobs) == 1:
                _settle(jobs[0], exc)
                return
            logger.warning("a merged batch of %d jobs failed; retrying them one by one", len(jobs))
            for job in jobs:
                try:
                    _settle(job, await self._call(job.items))
                except Exception as job_exc:
                    _settle(job, job_exc)
            return
        start = 0
        for job in jobs:
            _settle(job, outputs[start : start + len(job.items)])
            start += len(job.items)


def _settle(job: _Job[In, Out], result: list[Out] | BaseException) -> None:
    if job.future.done():
        return
    if isinstance(result, BaseException):
        job.future.set_exception(result)
    else:
        job.future.set_result(result)
