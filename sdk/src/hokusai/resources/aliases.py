"""Aliases of a model (`production`, `staging`...): set, delete, history, where one pointed then."""

from __future__ import annotations

from datetime import datetime

from hokusai._base import Call, body, model, models, nothing, path
from hokusai._resource import AsyncResource, SyncResource, aio, sync
from hokusai.types import AliasAt, AliasEvent, AliasMove


def list_aliases(name: str) -> Call[dict[str, int]]:
    """Each alias of the model and the version it points to."""
    return Call("GET", path("models", name, "aliases"), lambda r: dict(r.json()), repeatable=True)


def set_alias(name: str, alias: str, version: int, *, reason: str | None = None) -> Call[AliasMove]:
    """Point an alias at a version; the move is recorded with who made it and why."""
    url = path("models", name, "aliases", alias)
    return Call(
        "PUT", url, model(AliasMove), json=body(version=version, reason=reason), repeatable=True
    )


def delete(name: str, alias: str) -> Call[None]:
    """Remove an alias."""
    return Call("DELETE", path("models", name, "aliases", alias), nothing, repeatable=True)


def history(name: str, alias: str) -> Call[list[AliasEvent]]:
    """Every move of the alias, oldest first."""
    url = path("models", name, "aliases", alias, "history")
    return Call("GET", url, models(AliasEvent), repeatable=True)


def at(name: str, alias: str, when: datetime) -> Call[int | None]:
    """The version the alias pointed to at `when` (None: nowhere)."""
    url = path("models", name, "aliases", alias, "history")
    params = {"at": when.isoformat()}
    return Call(
        "GET",
        url,
        lambda r: AliasAt.model_validate(r.json()).version,
        params=params,
        repeatable=True,
    )


class Aliases(SyncResource):
    list = sync(list_aliases)
    set = sync(set_alias)
    delete = sync(delete)
    history = sync(history)
    at = sync(at)


class AsyncAliases(AsyncResource):
    list = aio(list_aliases)
    set = aio(set_alias)
    delete = aio(delete)
    history = aio(history)
    at = aio(at)
