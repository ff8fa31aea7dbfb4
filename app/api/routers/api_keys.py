from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from app.api.auth import AdminDep, PrincipalDep
from app.api.deps import ApiKeyServiceDep
from app.api.errors import AUTHENTICATED, problems
from app.api.idempotency import IdempotentDep
from app.api.routers import API_PREFIX, Limit, Offset
from app.api.routing import Route
from app.core.security import Scope
from app.schemas.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyPage, ApiKeyRead, CurrentKey
from app.schemas.common import DEFAULT_LIMIT

router = APIRouter(
    prefix=f"{API_PREFIX}/api-keys",
    tags=["api-keys"],
    responses=problems(*AUTHENTICATED),
    route_class=Route,
)


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyCreated,
    responses=problems(409, 413, 422),
)
async def create_api_key(
    body: ApiKeyCreate, principal: AdminDep, api_keys: ApiKeyServiceDep, idempotent: IdempotentDep
) -> JSONResponse:
    """Create an API key. The secret `key` appears only in this response."""

    async def create() -> ApiKeyCreated:
        api_key, secret = await api_keys.create_key(body.name, body.scopes)
        return ApiKeyCreated(**ApiKeyRead.model_validate(api_key).model_dump(), key=secret)

    return await idempotent(principal, body, create)


@router.get("", response_model=ApiKeyPage, responses=problems(422))
async def list_api_keys(
    _: AdminDep, api_keys: ApiKeyServiceDep, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> ApiKeyPage:
    """List API keys, oldest first, without their secrets."""
    items, total = await api_keys.list_keys(limit=limit, offset=offset)
    return ApiKeyPage(
        items=[ApiKeyRead.model_validate(item) for item in items],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/current", response_model=CurrentKey)
async def get_current_key(principal: PrincipalDep) -> CurrentKey:
    """The key this request is made with (any key may ask): its name and effective scopes, so a
    client can tell what it may do before it tries."""
    scopes = [scope for scope in Scope if scope in principal.scopes]
    return CurrentKey(id=principal.id, name=principal.name, scopes=scopes)


@router.delete("/{api_key_id:uuid}", status_code=204, responses=problems(404, 422))
async def revoke_api_key(
    api_key_id: uuid.UUID, _: AdminDep, api_keys: ApiKeyServiceDep
) -> Response:
    """Revoke an API key; requests with it get 401 from now on."""
    await api_keys.revoke_key(api_key_id)
    return Response(status_code=204)
