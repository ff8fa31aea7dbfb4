"""API keys: create, list, revoke (an admin key's business), and the key in use (any key)."""

from __future__ import annotations

from collections.abc import Sequence

from hokusai._base import Call, Page, creating, model, nothing, path, query
from hokusai._resource import C, Resource, method, page_of, paged
from hokusai.types import ApiKey, CreatedKey, CurrentKey


def create(
    name: str, scopes: Sequence[str], *, idempotency_key: str | None = None
) -> Call[CreatedKey]:
    """A new key; its secret (`key`) is in this answer only."""
    payload = {"name": name, "scopes": list(scopes)}
    return creating("POST", path("api-keys"), model(CreatedKey), idempotency_key, json=payload)


def list_keys(offset: int) -> Call[Page[ApiKey]]:
    """Every key, without secrets."""
    params = query(limit=500, offset=offset)
    return Call("GET", path("api-keys"), page_of(ApiKey), params=params, repeatable=True)


def current() -> Call[CurrentKey]:
    """The key this client calls with: its name and effective scopes."""
    return Call("GET", path("api-keys", "current"), model(CurrentKey), repeatable=True)


def revoke(api_key_id: str) -> Call[None]:
    """Revoke a key: it gets 401 from now on."""
    return Call("DELETE", path("api-keys", api_key_id), nothing, repeatable=True)


class ApiKeys(Resource[C]):
    create = method(create)
    list = paged(list_keys)
    current = method(current)
    revoke = method(revoke)
