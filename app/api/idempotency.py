"""A write done once per `Idempotency-Key`: the same key and body replay the stored response,
another body is 409, concurrent duplicates wait for the first (`IdempotentDep`)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from app.api.deps import SessionDep, SettingsDep
from app.core.security import Principal
from app.services.idempotency import IdempotencyService, fingerprint

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
    `await idempotent(principal, body, create)` where `create` returns a JSON-able body. Without
    an Idempotency-Key header it just runs `create`."""

    def __init__(self, request: Request, service: IdempotencyService, key: str | None) -> None:
        self.request = request
        self.service = service
        self.key = key

    def request_key(self, principal: Principal) -> str | None:
        """A key for effects outside Postgres, the same across retries with the same
        Idempotency-Key; None without one."""
        if self.key is None:
            return None
        return hashlib.sha256(f"{principal.id}:{self.key}".encode()).hexdigest()[:32]

    async def __call__(
        self,
        principal: Principal,
        request_body: Any,
        create: Callable[[], Awaitable[Any]],
        status: int = 201,
    ) -> JSONResponse:
        async def created() -> tuple[int, Any]:
            return status, jsonable_encoder(await create())

        if self.key is None:
            _, body = await created()
            return JSONResponse(body, status_code=status)
        stored = await self.service.run(
            principal.id,
            self.key,
            fingerprint(self.request.method, self.request.url.path, jsonable_encoder(request_body)),
            created,
        )
        headers = {"Idempotent-Replayed": "true"} if stored.replayed else {}
        return JSONResponse(stored.body, status_code=stored.status, headers=headers)


async def get_idempotent(
    request: Request, session: SessionDep, settings: SettingsDep, key: IdempotencyKey = None
) -> Idempotent:
    return Idempotent(request, IdempotencyService(session, settings.idempotency_ttl_s), key)


IdempotentDep = Annotated[Idempotent, Depends(get_idempotent)]
