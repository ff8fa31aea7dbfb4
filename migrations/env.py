"""Alembic environment: async engine, our own version table so MLflow can share the server."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from sqlalchemy.engine import Connection

from app.core.config import Settings
from app.db import models  # noqa: F401  # registers every table on Base.metadata
from app.db.base import Base, UtcDateTime
from app.db.session import create_engine

VERSION_TABLE = "hokusai_alembic_version"

config = context.config
url = config.attributes.get("database_url") or Settings().database_url


def render_item(kind: str, item: Any, autogen_context: Any) -> str | Literal[False]:
    """Autogenerate writes our UTC type as plain timestamptz, so revisions never import app."""
    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def configure(connection: Connection | None = None) -> None:
    context.configure(
        connection=connection,
        url=None if connection is not None else url,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
        render_item=render_item,
        literal_binds=connection is None,
    )


def run_sync(connection: Connection) -> None:
    configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_engine(Settings(database_url=url), migrations=True)
    async with engine.connect() as connection:
        await connection.run_sync(run_sync)
    await engine.dispose()


if context.is_offline_mode():
    configure()
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_online())
