"""API keys: issue, list, revoke, authenticate."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ApiKeyNotFound
from app.core.security import (
    Principal,
    PrincipalCache,
    Scope,
    effective_scopes,
    generate_key,
    hash_key,
    key_lookup,
    key_matches,
)
from app.db.base import utcnow
from app.db.models import ApiKey
from app.db.repositories.api_keys import ApiKeyRepository

BOOTSTRAP_KEY_NAME = "bootstrap"


class ApiKeyService:
    def __init__(self, session: AsyncSession, principals: PrincipalCache | None = None) -> None:
        self.keys = ApiKeyRepository(session)
        self.principals = principals or PrincipalCache(ttl_s=0)

    async def create_key(self, name: str, scopes: Sequence[Scope]) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret is never stored, only its hash."""
        secret = generate_key()
        api_key = await self.keys.add(_new_key(name, scopes, secret))
        self.principals.lookups.add(key_lookup(secret))  # known here at once, throttled or not
        return api_key, secret

    async def ensure_key(self, name: str, scopes: Sequence[Scope], secret: str) -> bool:
        """Register a key whose secret was chosen outside (bootstrap, development); True if new."""
        return await self.keys.add_if_absent(_new_key(name, scopes, secret))

    async def list_keys(self, *, limit: int, offset: int) -> tuple[Sequence[ApiKey], int]:
        return await self.keys.page(limit=limit, offset=offset)

    async def revoke_key(self, api_key_id: uuid.UUID) -> ApiKey:
        api_key = await self.keys.get(api_key_id)
        if api_key is None:
            raise ApiKeyNotFound(f"No API key with id {api_key_id}")
        if api_key.revoked_at is None:
            api_key.revoked_at = utcnow()
        self.principals.evict(api_key_id)
        return api_key

    async def authenticate(self, secret: str) -> Principal | None:
        """Who holds this secret, or None for an unknown or revoked key. The stored hash is
        compared in constant time."""
        principal = self.principals.get(secret)
        if principal is not None:
            return principal
        api_key = await self.keys.get_by_lookup(key_lookup(secret))
        if (
            api_key is None
            or api_key.revoked_at is not None
            or not key_matches(secret, api_key.key_hash)
        ):
            return None
        principal = Principal(api_key.id, api_key.name, effective_scopes(api_key.scopes))
        self.principals.put(secret, principal)
        return principal

    async def active_lookups(self) -> list[str]:
        """The lookup prefixes of every key not revoked."""
        return await self.keys.active_lookups()


def _new_key(name: str, scopes: Sequence[Scope], secret: str) -> ApiKey:
    return ApiKey(
        id=uuid.uuid4(),
        name=name,
        lookup=key_lookup(secret),
        key_hash=hash_key(secret),
        scopes=[Scope(scope).value for scope in scopes],
        created_at=utcnow(),
    )
