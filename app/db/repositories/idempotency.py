"""Idempotency records: claimed, completed, replayed, expired.
Repositories flush when they need an id and never commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import IdempotencyRecord
from app.db.repositories.common import insert


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self, api_key_id: uuid.UUID, key: str, fingerprint: str, now: datetime, expires_at: datetime
    ) -> bool:
        """Take the key for this request. On Postgres a concurrent claim of the same key waits
        here until the first request's transaction ends, then sees its stored response."""
        statement = (
            insert(self.session, IdempotencyRecord)
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
