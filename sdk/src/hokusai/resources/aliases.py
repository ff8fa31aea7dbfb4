"""Aliases of a model (`production`, `staging`...): set, delete, history, where one pointed then."""

from __future__ import annotations

from datetime import datetime

from hokusai._base import Call, body, model, models, nothing, path
from hokusai._resource import C, Resource, method
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


class Aliases(Resource[C]):
    list = method(list_aliases)
    set = method(set_alias)
    delete = method(delete)
    history = method(history)
    at = method(at)
