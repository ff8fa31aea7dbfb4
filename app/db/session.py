"""Engine and session factory, built once in the app lifespan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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


def create_engine(
    settings: Settings, pool_size: int | None = None, *, migrations: bool = False
) -> AsyncEngine:
    """The engine; `pool_size` overrides the setting (for a writer with a pool of its own).
    Postgres enforces the statement, lock and idle-in-transaction timeouts on every session,
    except the migrations' (a backfill may run long)."""
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
        "connect_args": {
            "connect_timeout": max(1, round(settings.database_timeout_s)),
            "options": "" if migrations else _server_timeouts(settings),
        },
        # Parameters (key hashes and prefixes among them) stay out of error messages and logs.
        "hide_parameters": True,
    }
    return create_async_engine(url, **options)


def _server_timeouts(settings: Settings) -> str:
    timeouts = {
        "statement_timeout": settings.database_statement_timeout_s,
        "lock_timeout": settings.database_lock_timeout_s,
        "idle_in_transaction_session_timeout": settings.database_idle_in_transaction_timeout_s,
    }
    return " ".join(f"-c {name}={round(seconds * 1000)}" for name, seconds in timeouts.items())


def timed_out(error: BaseException) -> bool:
    """Whether Postgres cancelled the statement for one of those timeouts."""
    cause = getattr(error, "orig", error)
    return isinstance(cause, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


AFTER_COMMIT = "after_commit"


AfterCommit = Callable[[], Awaitable[object] | None]


def after_commit(session: AsyncSession, action: AfterCommit) -> None:
    """Run `action` once the session's work is committed; never if it is rolled back (a webhook
    must not announce a change that did not happen). Whoever commits the session runs it and
    awaits what it returns (`committed`)."""
    session.info.setdefault(AFTER_COMMIT, []).append(action)


async def committed(session: AsyncSession) -> None:
    """Run the actions noted in this session since the last call, in order."""
    actions: list[AfterCommit] = session.info.pop(AFTER_COMMIT, [])
    for action in actions:
        result = action()
        if result is not None:
            await result


async def end_reads(session: AsyncSession) -> None:
    """End the session's transaction before slow work outside the database (an MLflow call, a
    model runner), so no connection sits idle in transaction and no row stays locked across it.
    Only reads may have happened; the rows they loaded stay usable (`expire_on_commit=False`) and
    the next statement starts a new transaction."""
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("end_reads() after a write: that would commit half the work")
    if session.in_transaction():
        await session.commit()


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
