"""API keys: found by prefix, listed, revoked.
Repositories flush when they need an id and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ApiKey
from app.db.repositories.common import insert, page


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
            insert(self.session, ApiKey)
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

    async def active_lookups(self) -> list[str]:
        query = select(ApiKey.lookup).where(ApiKey.revoked_at.is_(None))
        return list((await self.session.execute(query)).scalars())

    async def page(self, *, limit: int, offset: int) -> tuple[Sequence[ApiKey], int]:
        return await page(
            self.session, select(ApiKey).order_by(ApiKey.created_at, ApiKey.id), limit, offset
        )
