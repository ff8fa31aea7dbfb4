"""Adaptive micro-batching of model calls: a model is cheap per row and expensive per call, so
the rows of concurrent requests for one loaded version go to the model together.

A call that finds its model idle runs at the end of the event loop's current turn, with every
other call made in that turn: one Redis reply wakes the requests of a whole wave of clients at
once, and they share one model call, while a lone request waits for nothing but that turn. Calls
that arrive while the model is busy (all of its `concurrency` runners at work) queue, and when a
runner is free they run together in one call
(up to `max_rows` rows, after at most `max_wait_s` more for company: 2 ms by default, time for
the event loop to read the requests already waiting on their sockets). The window is the model's
own call time plus that wait: it widens under load and closes when the server is idle.
Each request gets its own rows back, in order. If a gathered call fails, each request's rows run
again alone, so the request that caused the error is the only one to see it.

A call made while its process serves no other request runs at once, in its caller's task: no
other request could join it, and a task and a loop turn are a sizeable part of a lone request's
latency. With batching off, each request's rows are a call of their own, as many at once as the
model has runners."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from app.core.metrics import Metrics

Rows = list[dict[str, Any]]


@dataclass
class _Waiting:
    rows: Rows
    answer: asyncio.Future[list[Any]]
    since: float = field(default_factory=time.perf_counter)


class Batcher:
    """The calls of one loaded model version. `run` is the model call (rows in, one output per
    row out), served by `concurrency` runners at once."""

    def __init__(
        self,
        run: Callable[[Rows], Awaitable[list[Any]]],
        *,
        model: str,
        enabled: bool,
        max_rows: int,
        max_wait_s: float,
        concurrency: int,
        metrics: Metrics,
    ) -> None:
        self._run = run
        self.model = model
        # Batching off: a call takes one request (`_take` takes at least one, and no second fits one
        # row), and waits for nobody.
        self.max_rows = max_rows if enabled else 1
        self.max_wait_s = max_wait_s if enabled else 0.0
        self.concurrency = concurrency
        self.metrics = metrics
        self._queue: deque[_Waiting] = deque()
        self._running = 0
        self._pending = False  # a gather is started and has not taken its rows yet
        self._gathering: set[asyncio.Task[None]] = set()  # held: the loop keeps tasks weakly

    async def __call__(self, rows: Rows) -> list[Any]:
        idle = self._running < self.concurrency and not self._queue
        if idle and self.metrics.serving <= 1:  # alone: nobody to wait for
            self._running += 1
            try:
                return await self._call(rows, requests=1)
            finally:
                self._running -= 1
                self._next()
        waiting = _Waiting(rows, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        self._next(wait=not idle)
        return await waiting.answer

    def _next(self, *, wait: bool = True) -> None:
        """Start the queued calls, together, once a runner is free: at the end of this loop
        turn (the task's first step runs after the callbacks already scheduled), and `wait`ing
        `max_wait_s` for company first when the model was busy. One gather at a time takes from
        the queue; it starts the next for what it leaves."""
        if self._pending or self._running >= self.concurrency or not self._queue:
            return
        self._running += 1
        self._pending = True
        task = asyncio.create_task(self._gather(wait))
        self._gathering.add(task)
        task.add_done_callback(self._gathering.discard)

    async def _gather(self, wait: bool) -> None:
        taken = False
        try:
            if wait and self.max_wait_s > 0 and self._rows_queued() < self.max_rows:
                await asyncio.sleep(self.max_wait_s)
            batch = self._take()
            taken, self._pending = True, False
            self._next(wait=False)  # the rest, on another free runner
            now = time.perf_counter()
            for waiting in batch:
                self.metrics.batch_wait_seconds.observe(now - waiting.since)
            if batch:
                await self._answer(batch)
        finally:
            if not taken:  # cancelled while it waited
                self._pending = False
            self._running -= 1
            self._next()

    def _take(self) -> list[_Waiting]:
        """This call's share of the queue: its rows split evenly among the runners free now
        (this one counted), at most `max_rows`, at least one request."""
        free = self.concurrency - self._running + 1
        share = min(self.max_rows, -(-self._rows_queued() // free))
        batch: list[_Waiting] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].rows) <= share):
            size += len(self._queue[0].rows)
            batch.append(self._queue.popleft())
        return [waiting for waiting in batch if not waiting.answer.done()]  # gone clients

    async def _answer(self, batch: list[_Waiting]) -> None:
        try:
            rows = batch[0].rows if len(batch) == 1 else [*chain(*(w.rows for w in batch))]
            outputs = await self._call(rows, requests=len(batch))
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], exc)
                return
            for waiting in batch:  # alone, so only the request at fault fails
                try:
                    _settle(waiting, await self._call(waiting.rows, requests=1))
                except Exception as alone:
                    _settle(waiting, alone)
            return
        start = 0
        for waiting in batch:
            _settle(waiting, outputs[start : start + len(waiting.rows)])
            start += len(waiting.rows)

    async def _call(self, rows: Rows, *, requests: int) -> list[Any]:
        self.metrics.model_call_rows.observe(len(rows))
        mode = "alone" if requests == 1 else "gathered"
        self.metrics.child(self.metrics.model_calls, self.model, mode).inc()
        return await self._run(rows)

    def _rows_queued(self) -> int:
        return sum(len(waiting.rows) for waiting in self._queue)


def _settle(waiting: _Waiting, outcome: list[Any] | BaseException) -> None:
    if waiting.answer.done():  # its client went away
        return
    if isinstance(outcome, BaseException):
        waiting.answer.set_exception(outcome)
    else:
        waiting.answer.set_result(outcome)
