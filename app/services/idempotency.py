"""Idempotency-Key for creating POSTs: the same key and request replays the stored response,
the same key with another request is a conflict, and concurrent duplicates have one effect."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import IdempotencyConflict
from app.db.base import utcnow
from app.db.repositories.idempotency import IdempotencyRepository


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    replayed: bool


def fingerprint(method: str, path: str, request: Any) -> str:
    canonical = json.dumps(
        [method, path, request], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyService:
    def __init__(self, session: AsyncSession, ttl_s: int) -> None:
        self.records = IdempotencyRepository(session)
        self.ttl = timedelta(seconds=ttl_s)

    async def run(
        self,
        api_key_id: uuid.UUID,
        key: str,
        request_fingerprint: str,
        create: Callable[[], Awaitable[tuple[int, Any]]],
    ) -> StoredResponse:
        """Run `create` once per key. Its (status, JSON body) is stored in the same transaction
        as its effects, so a failed request leaves no record and may be retried."""
        now = utcnow()
        if await self.records.claim(api_key_id, key, request_fingerprint, now, now + self.ttl):
            status, body = await create()
            await self.records.complete(api_key_id, key, status, body)
            return StoredResponse(status, body, replayed=False)
        record = await self.records.get(api_key_id, key)
        if (
            record is None
            or record.fingerprint != request_fingerprint
            or record.response_status is None
        ):
            raise IdempotencyConflict(
                "This Idempotency-Key was used with a different request; use a new key"
            )
        return StoredResponse(record.response_status, record.response_body, replayed=True)
