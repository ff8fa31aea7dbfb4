"""API key material: generation, hashing, constant-time comparison, scopes."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from app.core.shared import Shared

KEY_PREFIX = "hk_"
LOOKUP_LENGTH = 12


class Scope(StrEnum):
    READ = "read"
    PREDICT = "predict"
    WRITE = "write"
    BENCHMARK = "benchmark"  # held benchmarks: upload, retire, read their rows
    ADMIN = "admin"


# A key holding the left scope may do everything the right scopes allow.
IMPLIED_SCOPES: dict[Scope, frozenset[Scope]] = {
    Scope.READ: frozenset({Scope.READ}),
    Scope.PREDICT: frozenset({Scope.PREDICT}),
    Scope.WRITE: frozenset({Scope.WRITE, Scope.READ}),
    Scope.BENCHMARK: frozenset({Scope.BENCHMARK, Scope.READ}),
    Scope.ADMIN: frozenset(Scope),
}


def effective_scopes(scopes: list[str]) -> frozenset[Scope]:
    return frozenset().union(*(IMPLIED_SCOPES[Scope(s)] for s in scopes))


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_lookup(key: str) -> str:
    """The non-secret part stored in clear to find the row; the rest is only ever hashed."""
    return key[len(KEY_PREFIX) : len(KEY_PREFIX) + LOOKUP_LENGTH]


def hash_key(key: str) -> str:
    # The key carries 256 random bits, so a fast hash is safe; no salt or KDF is needed.
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the API key's id, name and effective scopes."""

    id: uuid.UUID
    name: str
    scopes: frozenset[Scope]


class KnownLookups:
    """The lookup prefixes of the keys that exist (not revoked), as last read: who a throttled
    address may still be. Read again at most every `every_s` seconds when asked about a prefix
    it lacks (the caller reads; `due` reserves the turn, so concurrent callers read once)."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s = every_s
        self._lookups: frozenset[str] = frozenset()
        self._read_at = -math.inf

    def has(self, lookup: str) -> bool:
        return lookup in self._lookups

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._read_at < self.every_s:
            return False
        self._read_at = now
        return True

    def replace(self, lookups: Iterable[str]) -> None:
        self._lookups = frozenset(lookups)

    def add(self, lookup: str) -> None:
        self._lookups = self._lookups | {lookup}


class PrincipalCache:
    """Recently authenticated keys, in this process, for `ttl_s` seconds, so most requests skip
    the database. Keyed by the key's hash, never the secret. A revocation evicts at once here;
    other replicas notice within `ttl_s`. While the database cannot be reached, a key checked
    within the last `ttl_s + stale_s` seconds is still served (`stale`): stale-if-error."""

    def __init__(self, ttl_s: float, stale_s: float = 0.0, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.stale_s = stale_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()  # checked at
        self._checking: Shared[Principal | None] = Shared()
        self.lookups = KnownLookups()

    def get(self, key: str) -> Principal | None:
        return self._within(key, self.ttl_s)

    def stale(self, key: str) -> Principal | None:
        """The key's principal if it was checked recently enough to serve while the database is
        unreachable."""
        return self._within(key, self.ttl_s + self.stale_s)

    def _within(self, key: str, age_s: float) -> Principal | None:
        entry = self._entries.get(hash_key(key))
        if entry is None or entry[0] + age_s < time.monotonic():
            return None
        return entry[1]

    async def checked(
        self, key: str, check: Callable[[], Awaitable[Principal | None]]
    ) -> Principal | None:
        """`check()`'s answer for this key, checked once for every request that asks while the
        check runs: when a busy key's trust runs out, each of its requests in flight would
        otherwise query the database at the same moment."""
        principal, _ = await self._checking.read(hash_key(key), check)
        return principal

    def can_serve(self) -> bool:
        """Whether some key would be served without the database (stale-if-error): the newest
        entry is the last one."""
        if not self._entries:
            return False
        checked, _ = next(reversed(self._entries.values()))
        return checked + self.ttl_s + self.stale_s >= time.monotonic()

    def put(self, key: str, principal: Principal) -> None:
        if self.ttl_s <= 0 and self.stale_s <= 0:
            return
        digest = hash_key(key)
        self._entries[digest] = (time.monotonic(), principal)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def evict(self, api_key_id: uuid.UUID) -> None:
        for digest in [d for d, (_, p) in self._entries.items() if p.id == api_key_id]:
            del self._entries[digest]
