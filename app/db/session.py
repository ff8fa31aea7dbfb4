"""Engine and session factory, built once in the app lifespan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from app.core.config import Settings


def create_engine(settings: Settings, pool_size: int | None = None) -> AsyncEngine:
    """The engine; `pool_size` overrides the setting (for a writer with a pool of its own)."""
    url = settings.database_url
    if settings.embedded:
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, connect_args={"timeout": settings.database_timeout_s}, hide_parameters=True
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    size = pool_size or settings.database_pool_size
    options: dict[str, Any] = {
        "pool_size": size,
        "max_overflow": size,
        "pool_timeout": settings.database_timeout_s,
        "pool_recycle": 1800,
        # A pooled connection a firewall or proxy dropped in silence is found out and replaced
        # at checkout (one round trip), not handed to a request that then fails with 503.
        "pool_pre_ping": True,
        "connect_args": {"connect_timeout": max(1, round(settings.database_timeout_s))},
        # Parameters (key hashes and prefixes among them) stay out of error messages and logs.
        "hide_parameters": True,
    }
    return create_async_engine(url, **options)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


AFTER_COMMIT = "after_commit"


def after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run `action` once the session's work is committed; never if it is rolled back (a webhook
    must not announce a change that did not happen). Whoever commits the session runs it
    (`committed`)."""
    session.info.setdefault(AFTER_COMMIT, []).append(action)


def committed(session: AsyncSession) -> list[Callable[[], None]]:
    """The actions noted in this session since the last call, in order."""
    actions: list[Callable[[], None]] = session.info.pop(AFTER_COMMIT, [])
    return actions


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def unreachable(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached (lost, refused, pool exhausted),
    as opposed to a statement it refused."""
    return isinstance(error, OperationalError | PoolTimeout | psycopg.OperationalError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    )


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
