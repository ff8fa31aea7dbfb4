"""Idempotency records: claimed (in progress until a lease ends), completed, replayed, released.
Repositories flush when they need an id and never commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import IdempotencyRecord
from app.db.repositories.common import insert


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self, api_key_id: uuid.UUID, key: str, fingerprint: str, now: datetime, expires_at: datetime
    ) -> bool:
        """Take the key for this request until `expires_at` (its lease): a new key, or one whose
        record expired (a finished response past its lifetime, or the lease of a request whose
        replica died)."""
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

    async def complete(
        self,
        api_key_id: uuid.UUID,
        key: str,
        claimed_at: datetime,
        status: int,
        body: Any,
        expires_at: datetime,
    ) -> None:
        await self.session.execute(
            update(IdempotencyRecord)
            .where(
                IdempotencyRecord.api_key_id == api_key_id,
                IdempotencyRecord.key == key,
                IdempotencyRecord.created_at == claimed_at,
            )
            .values(response_status=status, response_body=body, expires_at=expires_at)
        )

    async def release(self, api_key_id: uuid.UUID, key: str, claimed_at: datetime) -> None:
        """Free a claim whose request failed, so a retry runs again."""
        await self.session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.api_key_id == api_key_id,
                IdempotencyRecord.key == key,
                IdempotencyRecord.created_at == claimed_at,
                IdempotencyRecord.response_status.is_(None),
            )
        )

    async def in_progress(self, now: datetime) -> list[tuple[uuid.UUID, str]]:
        """(API key id, key) of every claim whose request may still be running."""
        rows = await self.session.execute(
            select(IdempotencyRecord.api_key_id, IdempotencyRecord.key).where(
                IdempotencyRecord.response_status.is_(None), IdempotencyRecord.expires_at > now
            )
        )
        return [(api_key_id, key) for api_key_id, key in rows.tuples()]
