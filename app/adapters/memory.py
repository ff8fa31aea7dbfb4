"""Remembered state: what this process read from Postgres and reuses while its source has not
changed, coherent across replicas through one token per source in Redis.

Two kinds of source are remembered: a model (which version its names and aliases mean) and an A/B
test (its status, weights and end; and which test a model runs). A unit of work that changes a
source notes it in its session (`changed`); whoever commits the session announces the changes
afterwards (`Memory.announce`), which replaces the sources' tokens with fresh random values. A
value is stored with the token read *before* Postgres was read, and is reused only while Redis
still holds that token: a change committed after the read always replaces the token, so it counts
on the very next request on every replica. Without Redis (off, down, circuit open) nothing is
reused. Entries also expire after `ttl_s`, which bounds the staleness a token write lost to a
Redis failure could cause.

Callers never see a token: they ask `read_through(key, load)`. The first item of a key names its
source. Requests that must load the same key under the same token at the same time share one
load.

Rules: docs/reference/specification.md#remembered-state."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.adapters.cache import Cache
from app.core.shared import Shared

log = logging.getLogger(__name__)

MODEL = "model"
AB_TEST = "ab_test"
KINDS = (MODEL, AB_TEST)
_CHANGES = "changes"

V = TypeVar("V")


def changed(session: AsyncSession, kind: str, source: str) -> None:
    """Note, in the unit of work, that a source changed; it is announced once committed."""
    session.info.setdefault(_CHANGES, set()).add((kind, source))


# Where a value came from: this process's memory, a read of Postgres, or the read another
# request had in flight.
MEMORY, DATABASE, SHARED = "memory", "database", "shared"


@dataclass(slots=True)
class Recall(Generic[V]):
    """What `read_through` found: the value, where it came from (`MEMORY`, `DATABASE`,
    `SHARED`), and the Redis keys asked for alongside with their values."""

    value: V
    source: str
    alongside: Sequence[str]
    found: list[Any]


@dataclass(frozen=True)
class _Entry:
    value: Any
    token: str
    expires: float


class Memo:
    """The remembered values of one kind of source."""

    LIMIT = 4096
    TOKEN_TTL_S = 86_400

    def __init__(self, cache: Cache, kind: str, ttl_s: float) -> None:
        self.cache = cache
        self.kind = kind
        self.ttl_s = ttl_s
        self.enabled = cache.enabled and ttl_s > 0
        self._entries: dict[tuple[Any, ...], _Entry] = {}
        self._loading: Shared[Any] = Shared()

    async def read_through(
        self,
        key: tuple[Any, ...],
        load: Callable[[], Awaitable[V]],
        *,
        keep: Callable[[V], bool] = lambda _: True,
        alongside: Callable[[V], Sequence[str]] = lambda _: (),
    ) -> Recall[V]:
        """The value remembered for `key` while its source is unchanged, else `load()`'s (kept
        when `keep` says so). `alongside` names Redis keys that depend on the value: they are
        read in the same round trip as the token, and returned with it."""
        entry = self._entries.get(key)
        if entry is not None and entry.expires >= time.monotonic():
            extra = alongside(entry.value)
            token, *found = await self.cache.get_many([self._token_key(key[0]), *extra])
            if token == entry.token:
                return Recall(entry.value, MEMORY, extra, found)
        token = await self._token(key[0])
        value, source = await self._load(key, token, load)
        if token is not None and keep(value):
            if len(self._entries) >= self.LIMIT:
                self._entries.clear()
            self._entries[key] = _Entry(value, token, time.monotonic() + self.ttl_s)
        extra = alongside(value)
        return Recall(value, source, extra, await self.cache.get_many(extra) if extra else [])

    async def _load(
        self, key: tuple[Any, ...], token: str | None, load: Callable[[], Awaitable[V]]
    ) -> tuple[V, str]:
        """`load()`'s value, read once for every request that read the same token while it is
        read: when a busy model's entry expires, each of its requests in flight would otherwise
        read Postgres at the same moment, for the same answer. A request that read another token
        (a change was announced in between) reads for itself, as does every request while Redis
        cannot say (no token)."""
        if token is None:
            return await load(), DATABASE
        value, joined = await self._loading.read((key, token), load)
        return value, SHARED if joined else DATABASE

    async def forget(self, sources: set[str]) -> None:
        """After a commit that changed these sources: here at once, elsewhere by their tokens."""
        for key in [k for k in self._entries if k[0] in sources]:
            del self._entries[key]
        if self.cache.enabled:
            tokens = {self._token_key(source): uuid.uuid4().hex for source in sources}
            if not await self.cache.set_many(tokens, self.TOKEN_TTL_S):
                log.warning("could not replace the %s tokens of %s", self.kind, sorted(sources))

    def _token_key(self, source: str) -> str:
        return self.cache.key(self.kind, source, "token")

    async def _token(self, source: str) -> str | None:
        """The source's token, read before Postgres; a fresh one is written when Redis has none
        (first use, expiry, a restarted Redis), unless another request wrote one first: then
        that one (so requests arriving together share a token, and a read). None when Redis
        cannot say."""
        if not self.enabled:
            return None
        (token,) = await self.cache.get_many([self._token_key(source)])
        if isinstance(token, str):
            return token
        token = await self.cache.set_first(
            self._token_key(source), uuid.uuid4().hex, self.TOKEN_TTL_S
        )
        return token if isinstance(token, str) else None


class Memory:
    """This process's memos, one per kind, built once in the lifespan."""

    def __init__(self, cache: Cache, ttl_s: float) -> None:
        self._memos = {kind: Memo(cache, kind, ttl_s) for kind in KINDS}

    def __getitem__(self, kind: str) -> Memo:
        return self._memos[kind]

    async def announce(self, session: AsyncSession) -> None:
        """After `session` committed: the sources it changed are forgotten everywhere."""
        found: dict[str, set[str]] = {}
        for kind, source in session.info.pop(_CHANGES, set()):
            found.setdefault(kind, set()).add(source)
        for kind, sources in found.items():
            await self._memos[kind].forget(sources)
