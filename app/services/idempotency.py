"""Idempotency-Key for creating POSTs: the same key and request replays the stored response,
the same key with another request is a conflict, and concurrent duplicates have one effect.

A request claims its key in a transaction of its own, committed before the work starts, so the
work may end its reads early and call MLflow or model runners holding no transaction. The claim
lasts a lease (`idempotency_lease_s`); the response is stored in the work's own transaction, and a
failed request frees its claim. A duplicate that arrives while the first runs waits a moment for
its response, then gets 409 `request_in_progress` with Retry-After."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import IdempotencyConflict, RequestInProgress
from app.db.base import utcnow
from app.db.repositories.idempotency import IdempotencyRepository

# How long a duplicate waits for the first request's response before 409 request_in_progress:
# quick creations (a key, an A/B test) answer every duplicate with the replay.
DUPLICATE_WAIT_S = 2.0
IN_PROGRESS_RETRY_AFTER_S = 2


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    replayed: bool


@dataclass(frozen=True)
class Claim:
    api_key_id: uuid.UUID
    key: str
    claimed_at: datetime


def fingerprint(method: str, path: str, request: Any) -> str:
    canonical = json.dumps(
        [method, path, request], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def request_key(api_key_id: uuid.UUID, key: str) -> str:
    """The name a request's effects outside Postgres carry (MLflow's `hokusai.request_key` tag):
    the same across retries with one Idempotency-Key, and computable from a claim."""
    return hashlib.sha256(f"{api_key_id}:{key}".encode()).hexdigest()[:32]


class IdempotencyService:
    def __init__(self, ttl_s: int, lease_s: int) -> None:
        self.ttl = timedelta(seconds=ttl_s)
        self.lease = timedelta(seconds=lease_s)

    async def claim(
        self, session: AsyncSession, api_key_id: uuid.UUID, key: str, request_fingerprint: str
    ) -> Claim | StoredResponse:
        """The key, claimed for this request (the caller commits `session` at once), or the
        stored response of the request that claimed it first, waited for a moment."""
        records = IdempotencyRepository(session)
        delay, waited = 0.025, 0.0
        while True:
            now = utcnow()
            if await records.claim(api_key_id, key, request_fingerprint, now, now + self.lease):
                return Claim(api_key_id, key, now)
            record = await records.get(api_key_id, key)
            if record is not None and record.fingerprint != request_fingerprint:
                raise IdempotencyConflict(
                    "This Idempotency-Key was used with a different request; use a new key"
                )
            if record is not None and record.response_status is not None:
                return StoredResponse(record.response_status, record.response_body, True)
            if waited >= DUPLICATE_WAIT_S:
                raise RequestInProgress(
                    "The first request with this Idempotency-Key is still running; retry "
                    "to get its response",
                    retry_after=IN_PROGRESS_RETRY_AFTER_S,
                )
            await session.rollback()  # no transaction held while waiting
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.4)

    async def complete(self, session: AsyncSession, claim: Claim, status: int, body: Any) -> None:
        """Store the response, in the transaction of the work it answers."""
        await IdempotencyRepository(session).complete(
            claim.api_key_id, claim.key, claim.claimed_at, status, body, utcnow() + self.ttl
        )

    async def release(self, session: AsyncSession, claim: Claim) -> None:
        await IdempotencyRepository(session).release(claim.api_key_id, claim.key, claim.claimed_at)
