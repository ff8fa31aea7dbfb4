"""A model's aliases (`production`, `staging`...): where they point, moves with their history,
and rolling `production` back. Under `/models/{name}`, with the models' tag."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app.api.auth import ReaderDep, WriterDep
from app.api.deps import AliasServiceDep
from app.api.errors import AUTHENTICATED, problems
from app.api.routers import API_PREFIX
from app.api.routing import Route
from app.schemas.common import Time
from app.schemas.ml_models import ALIAS, AliasAt, AliasEventRead, AliasRead, AliasSet, Rollback

router = APIRouter(
    prefix=f"{API_PREFIX}/models",
    tags=["models"],
    responses=problems(*AUTHENTICATED),
    route_class=Route,
)

AliasPath = Annotated[str, Path(pattern=ALIAS)]


@router.get("/{name}/aliases", response_model=dict[str, int], responses=problems(404, 422))
async def list_aliases(name: str, _: ReaderDep, aliases: AliasServiceDep) -> dict[str, int]:
    """Where each alias of the model points: `{alias: version}`."""
    return await aliases.list_aliases(name)


@router.put("/{name}/aliases/{alias}", response_model=AliasRead, responses=problems(404, 409, 422))
async def set_alias(
    name: str, alias: AliasPath, body: AliasSet, principal: WriterDep, aliases: AliasServiceDep
) -> AliasRead:
    """Point an alias at a version (mirrored to MLflow); the move is recorded in its history."""
    return await aliases.set_alias(name, alias, body.version, body.reason, principal)


@router.delete("/{name}/aliases/{alias}", status_code=204, responses=problems(404, 422))
async def delete_alias(
    name: str, alias: AliasPath, principal: WriterDep, aliases: AliasServiceDep
) -> Response:
    """Remove an alias (recorded in its history)."""
    await aliases.delete_alias(name, alias, principal)
    return Response(status_code=204)


@router.get(
    "/{name}/aliases/{alias}/history",
    response_model=list[AliasEventRead] | AliasAt,
    responses=problems(404, 422),
)
async def get_alias_history(
    name: str,
    alias: AliasPath,
    _: ReaderDep,
    aliases: AliasServiceDep,
    at: Annotated[
        Time | None, Query(description="Where the alias pointed at this time (RFC 3339)")
    ] = None,
) -> list[AliasEventRead] | AliasAt:
    """Every move of an alias, oldest first; with `?at=`, the version it pointed to then."""
    if at is not None:
        return await aliases.alias_at(name, alias, at)
    return await aliases.alias_history(name, alias)


@router.post("/{name}/rollback", response_model=AliasRead, responses=problems(404, 409, 422))
async def rollback_production(
    name: str, body: Rollback, principal: WriterDep, aliases: AliasServiceDep
) -> AliasRead:
    """Move `production` back to its previous version, or to `to_version` if that version held
    production before; 409 `rollback_unavailable` otherwise."""
    return await aliases.rollback(name, body.to_version, body.reason, principal)
