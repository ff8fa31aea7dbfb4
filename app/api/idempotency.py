"""A write done once per `Idempotency-Key`: the same key and body replay the stored response,
another body is 409, a duplicate of a request still running waits a moment, then gets 409
`request_in_progress` (`IdempotentDep`; the rules: `app/services/idempotency.py`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import ResourcesDep, SessionDep
from app.core.security import Principal
from app.services.idempotency import (
    Claim,
    IdempotencyService,
    StoredResponse,
    fingerprint,
    request_key,
)
from app.wiring import Resources

log = logging.getLogger(__name__)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Repeat a request safely: the same key and body return the first response",
    ),
]


class Idempotent:
    """Wraps a route whose effect must happen once per key (creating POSTs, outcome batches):
    `await idempotent(principal, body, create)` where `create` returns a JSON-able body and
    writes through the request's session. Without an Idempotency-Key header it just runs
    `create`.

    With one, the key is claimed and committed in a short transaction of its own before
    `create` runs; `create`'s effects and the stored response are committed together here; a
    failure rolls them back and frees the claim, so a retry runs again."""

    def __init__(
        self, request: Request, resources: Resources, session: AsyncSession, key: str | None
    ) -> None:
        self.request = request
        self.resources = resources
        self.session = session
        self.key = key
        settings = resources.settings
        self.service = IdempotencyService(settings.idempotency_ttl_s, settings.idempotency_lease_s)

    def request_key(self, principal: Principal) -> str | None:
        """A key for effects outside Postgres, the same across retries with the same
        Idempotency-Key; None without one."""
        return None if self.key is None else request_key(principal.id, self.key)

    async def __call__(
        self,
        principal: Principal,
        request_body: Any,
        create: Callable[[], Awaitable[Any]],
        status: int = 201,
    ) -> JSONResponse:
        if self.key is None:
            return JSONResponse(jsonable_encoder(await create()), status_code=status)
        signature = fingerprint(
            self.request.method, self.request.url.path, jsonable_encoder(request_body)
        )
        async with self.resources.unit_of_work() as claims:
            claimed = await self.service.claim(claims, principal.id, self.key, signature)
        if isinstance(claimed, StoredResponse):
            return JSONResponse(
                claimed.body, status_code=claimed.status, headers={"Idempotent-Replayed": "true"}
            )
        try:
            body = jsonable_encoder(await create())
            await self.service.complete(self.session, claimed, status, body)
            await self.session.commit()
        except BaseException:
            await self.session.rollback()
            await asyncio.shield(self._release(claimed))
            raise
        return JSONResponse(body, status_code=status)

    async def _release(self, claim: Claim) -> None:
        """Best effort: when the database is gone too, the claim's lease ends it."""
        try:
            async with self.resources.unit_of_work() as session:
                await self.service.release(session, claim)
        except Exception as exc:  # the lease frees it; the request's error stands
            log.warning(
                "Idempotency-Key claim not freed (%s); it ends with its lease",
                type(exc).__name__,
            )


async def get_idempotent(
    request: Request, resources: ResourcesDep, session: SessionDep, key: IdempotencyKey = None
) -> Idempotent:
    return Idempotent(request, resources, session, key)


IdempotentDep = Annotated[Idempotent, Depends(get_idempotent)]
