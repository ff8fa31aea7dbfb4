"""The A/B exposure log: first exposures of units to tests, group-committed through an engine of
its own (infrastructure: a writer task, a raw driver connection kept between groups on Postgres).
`Traffic` (services/ab_tests.py) records through it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.repositories.ab_tests import expose, expose_on_postgres


class ExposureLog:
    """First exposures, written in groups (group commit). A request waits for the commit that
    holds its exposure, so nothing is answered before it is durable; but one INSERT and one commit
    serve every exposure queued while the previous group was being written, so under load a
    request pays a share of a commit, not one of its own. It writes through an engine of its own:
    requests waiting for it hold connections of the main pool, which it must never wait for.
    A unit this process has seen committed is not written again: a returning unit (the usual
    case: the same lead or user on every call) costs no Postgres round trip."""

    GROUP_LIMIT = 1000
    SEEN_LIMIT = 100_000  # (test, unit) pairs known committed; forgotten all at once when full

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._queued: list[tuple[uuid.UUID, str, int, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._connection: AsyncConnection | None = None  # Postgres: kept between groups
        self._seen: set[tuple[uuid.UUID, str]] = set()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        await self.engine.dispose()

    async def record(self, test_id: uuid.UUID, unit_id: str, position: int) -> bool:
        """True when this is the unit's first exposure to the test (and it was counted)."""
        if (test_id, unit_id) in self._seen:
            return False
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queued.append((test_id, unit_id, position, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        try:
            while self._queued:
                group = self._queued[: self.GROUP_LIMIT]
                del self._queued[: self.GROUP_LIMIT]
                try:
                    new = await self._expose(
                        [(test_id, unit_id, position) for test_id, unit_id, position, _ in group]
                    )
                except Exception as exc:  # the database: every exposure of the group failed
                    for *_, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                if len(self._seen) + len(group) > self.SEEN_LIMIT:
                    self._seen.clear()
                for test_id, unit_id, _, future in group:
                    first = (test_id, unit_id) in new
                    new.discard((test_id, unit_id))  # a unit twice in one group: counted once
                    self._seen.add((test_id, unit_id))
                    if not future.done():
                        future.set_result(first)
        finally:
            self._writer = None

    async def _expose(self, group: list[tuple[uuid.UUID, str, int]]) -> set[tuple[uuid.UUID, str]]:
        if self.engine.dialect.name != "postgresql":
            async with self.engine.begin() as connection:
                return await expose(connection, group)
        # On the driver connection under one the engine keeps between groups, in autocommit
        # (dropped on any error; the next group reconnects).
        if self._connection is None:
            connection = await self.engine.connect()
            self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        try:
            raw = await self._connection.get_raw_connection()
            assert raw.driver_connection is not None
            return await expose_on_postgres(raw.driver_connection, group)
        except BaseException:
            broken, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                await broken.invalidate()
                await broken.close()
            raise
