"""API keys: issue, list, revoke, authenticate."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ApiKeyNotFound
from app.core.security import Scope, generate_key, hash_key, key_lookup, key_matches
from app.db.base import utcnow
from app.db.models import ApiKey
from app.db.repositories import ApiKeyRepository

BOOTSTRAP_KEY_NAME = "bootstrap"


class ApiKeyService:
    def __init__(self, session: AsyncSession) -> None:
        self.keys = ApiKeyRepository(session)

    async def create_key(self, name: str, scopes: Sequence[Scope]) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret is never stored, only its hash."""
        secret = generate_key()
        api_key = await self.keys.add(_new_key(name, scopes, secret))
        return api_key, secret

    async def ensure_key(self, name: str, scopes: Sequence[Scope], secret: str) -> bool:
        """Register a key whose secret was chosen outside (bootstrap, development); True if new."""
        return await self.keys.add_if_absent(_new_key(name, scopes, secret))

    async def list_keys(self, *, limit: int, offset: int) -> tuple[Sequence[ApiKey], int]:
        return await self.keys.list(limit=limit, offset=offset)

    async def revoke_key(self, api_key_id: uuid.UUID) -> ApiKey:
        api_key = await self.keys.get(api_key_id)
        if api_key is None:
            raise ApiKeyNotFound(f"No API key with id {api_key_id}")
        if api_key.revoked_at is None:
            api_key.revoked_at = utcnow()
        return api_key

    async def authenticate(self, secret: str) -> ApiKey | None:
        """The active key this secret belongs to, or None. The hash comparison is constant-time."""
        api_key = await self.keys.get_by_lookup(key_lookup(secret))
        if api_key is None or api_key.revoked_at is not None:
            return None
        return api_key if key_matches(secret, api_key.key_hash) else None


def _new_key(name: str, scopes: Sequence[Scope], secret: str) -> ApiKey:
    return ApiKey(
        id=uuid.uuid4(),
        name=name,
        lookup=key_lookup(secret),
        key_hash=hash_key(secret),
        scopes=[Scope(scope).value for scope in scopes],
        created_at=utcnow(),
    )
