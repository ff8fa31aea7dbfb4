"""What every repository shares: a page and its total in one round trip, and the dialect's
INSERT (for ON CONFLICT)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


async def page(
    session: AsyncSession, query: Select[T], limit: int, offset: int
) -> tuple[list[T], int]:
    """One page of a single-entity query and the total count, in one round trip (a window count
    over the filtered rows)."""
    total = func.count().over().label("total")
    rows = (await session.execute(query.add_columns(total).limit(limit).offset(offset))).all()
    if rows:
        return [row[0] for row in rows], rows[0].total
    if offset == 0:
        return [], 0
    counted = await session.scalar(
        select(func.count()).select_from(query.order_by(None).subquery())
    )
    return [], counted or 0


def insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
