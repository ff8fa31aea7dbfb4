"""Engine and session factory, built once in the app lifespan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from app.core.config import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if settings.embedded:
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": settings.database_timeout_s})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    options: dict[str, Any] = {
        "pool_size": settings.database_pool_size,
        "max_overflow": settings.database_pool_size,
        "pool_timeout": settings.database_timeout_s,
        "pool_recycle": 1800,
        "connect_args": {"connect_timeout": max(1, round(settings.database_timeout_s))},
    }
    return create_async_engine(url, **options)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


CHANGED_MODELS = "changed_models"


def model_changed(session: AsyncSession, name: str) -> None:
    """Note, in the unit of work, that which version a name or alias of this model means may have
    changed. Whoever commits the session announces it afterwards (`changed_models`)."""
    session.info.setdefault(CHANGED_MODELS, set()).add(name)


def changed_models(session: AsyncSession) -> set[str]:
    """The models noted in this session since the last call."""
    changed: set[str] = session.info.pop(CHANGED_MODELS, set())
    return changed


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
