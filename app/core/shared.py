"""One read for every request that needs the same answer at the same time: the first request
starts it, the others wait for it, and it is forgotten when it ends. Used wherever a process
fills what it remembers (a model version loaded, an API key checked, a source's value read), so
that an entry running out under load costs one read, not one per request in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Shared(Generic[T]):
    """The reads in flight, by key."""

    def __init__(self) -> None:
        self._reading: dict[Hashable, asyncio.Future[T]] = {}

    async def read(self, key: Hashable, start: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """`start()`'s answer (or its error), and whether another request had started it. A
        request that is cancelled (its client left) does not cancel the read the others wait
        for."""
        reading = self._reading.get(key)
        joined = reading is not None
        if reading is None:
            reading = self._reading[key] = asyncio.ensure_future(start())
            reading.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(reading), joined

    def cancel(self) -> None:
        """Every read in flight cancelled (at shutdown)."""
        for reading in list(self._reading.values()):
            reading.cancel()

    def _forget(self, key: Hashable, done: asyncio.Future[T]) -> None:
        del self._reading[key]
        if not done.cancelled():
            done.exception()  # retrieved, even when every request waiting for it was cancelled
