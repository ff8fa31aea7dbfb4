"""The unit of work: one transaction, committed at the end or rolled back on any error; once it
is committed, what it changed is announced (so every replica forgets what it remembered of it,
`app/adapters/memory.py`) and its after-commit actions run (`app/db/session.py`). Requests
(`app/api/deps.py`), the command line and the workers all write through one (`app/wiring.py`).

While the database was just found down or hung (its breaker open), a fast 503 instead of
another wait on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.breaker import Breaker
from app.core.errors import DatabaseUnavailable
from app.db.session import committed

Announce = Callable[[AsyncSession], Awaitable[None]]


class UnitOfWork:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        announce: Announce | None = None,
        breaker: Breaker | None = None,
        retry_after_s: int = 5,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.announce = announce
        self.breaker = breaker
        self.retry_after_s = retry_after_s

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        if self.breaker is not None and self.breaker.open:
            raise DatabaseUnavailable(
                "The database did not answer just now", retry_after=self.retry_after_s
            )
        async with self.sessionmaker() as session:
            try:
                yield session
                if session.in_transaction():  # a session left unused costs no round trip
                    await session.commit()
            except BaseException:
                await session.rollback()
                raise
            if self.announce is not None:
                await self.announce(session)
            await committed(session)
