"""All SQL lives here. Repositories flush when they need an id and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ApiKey, IdempotencyRecord

T = TypeVar("T")


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, api_key: ApiKey) -> ApiKey:
        self.session.add(api_key)
        await self.session.flush()
        return api_key

    async def add_if_absent(self, api_key: ApiKey) -> bool:
        """Insert unless a key with the same lookup exists (replicas racing at start-up)."""
        values = {
            "id": api_key.id,
            "name": api_key.name,
            "lookup": api_key.lookup,
            "key_hash": api_key.key_hash,
            "scopes": api_key.scopes,
            "created_at": api_key.created_at,
        }
        statement = (
            _insert(self.session, ApiKey)
            .values(values)
            .on_conflict_do_nothing(index_elements=[ApiKey.lookup])
        )
        result = await self.session.execute(statement.returning(ApiKey.id))
        return result.first() is not None

    async def get(self, api_key_id: uuid.UUID) -> ApiKey | None:
        return await self.session.get(ApiKey, api_key_id)

    async def get_by_lookup(self, lookup: str) -> ApiKey | None:
        result = await self.session.execute(select(ApiKey).where(ApiKey.lookup == lookup))
        return result.scalar_one_or_none()

    async def list(self, *, limit: int, offset: int) -> tuple[Sequence[ApiKey], int]:
        return await _page(
            self.session, select(ApiKey).order_by(ApiKey.created_at, ApiKey.id), limit, offset
        )


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self, api_key_id: uuid.UUID, key: str, fingerprint: str, now: datetime, expires_at: datetime
    ) -> bool:
        """Take the key for this request. On Postgres a concurrent claim of the same key waits
        here until the first request's transaction ends, then sees its stored response."""
        statement = (
            _insert(self.session, IdempotencyRecord)
            .values(
                api_key_id=api_key_id,
                key=key,
                fingerprint=fingerprint,
                created_at=now,
                expires_at=expires_at,
            )
            .on_conflict_do_nothing(
                index_elements=[IdempotencyRecord.api_key_id, IdempotencyRecord.key]
            )
            .returning(IdempotencyRecord.key)
        )
        if (await self.session.execute(statement)).first() is not None:
            return True
        expired = (
            update(IdempotencyRecord)
            .where(
                IdempotencyRecord.api_key_id == api_key_id,
                IdempotencyRecord.key == key,
                IdempotencyRecord.expires_at <= now,
            )
            .values(
                fingerprint=fingerprint,
                response_status=None,
                response_body=None,
                created_at=now,
                expires_at=expires_at,
            )
            .returning(IdempotencyRecord.key)
        )
        return (await self.session.execute(expired)).first() is not None

    async def get(self, api_key_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
        return await self.session.get(IdempotencyRecord, (api_key_id, key), populate_existing=True)

    async def complete(self, api_key_id: uuid.UUID, key: str, status: int, body: Any) -> None:
        await self.session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key)
            .values(response_status=status, response_body=body)
        )


async def _page(
    session: AsyncSession, query: Select[T], limit: int, offset: int
) -> tuple[Sequence[T], int]:
    """One page and the total count, in one round trip (a window count over the filtered rows)."""
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


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
