"""Redis, with short timeouts. Any Redis error is a miss plus a metric; it never fails a request.

Reads and counters are pipelined automatically: the commands every request issues during one turn
of the event loop go to Redis together, in one pipeline and one round trip (what ioredis calls
auto-pipelining). Under load a request's Redis work costs a share of one round trip, not one of
its own; alone, it costs what it did."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from itertools import chain
from typing import Any

import orjson
from redis.exceptions import RedisError

from app.adapters.redis_connection import RedisConnection
from app.core.breaker import Breaker
from app.core.config import Settings
from app.core.metrics import Metrics

log = logging.getLogger(__name__)

# Commands a caller queued for the next pipeline, and where their replies go.
Queued = tuple[tuple[tuple[Any, ...], ...], "asyncio.Future[list[Any]]"]


class Cache:
    """A circuit breaker sits in front: after `breaker_failures` errors in a row, Redis is not
    asked for `breaker_cooldown_s` (every operation is an instant miss), then calls try again."""

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics) -> Cache:
        return cls(
            settings.redis_url,
            prefix=settings.redis_prefix,
            timeout_s=settings.redis_timeout_s,
            metrics=metrics,
            breaker_failures=settings.redis_breaker_failures,
            breaker_cooldown_s=settings.redis_breaker_cooldown_s,
        )

    def __init__(
        self,
        url: str | None,
        *,
        prefix: str,
        timeout_s: float,
        metrics: Metrics,
        breaker_failures: int = 3,
        breaker_cooldown_s: float = 5.0,
    ) -> None:
        self.prefix = prefix
        self.metrics = metrics
        self.breaker = Breaker(breaker_failures, breaker_cooldown_s)
        self._queued: list[Queued] = []
        self._sending: set[asyncio.Task[None]] = set()
        self.connection = RedisConnection(url, timeout_s=timeout_s) if url is not None else None

    @property
    def enabled(self) -> bool:
        return self.connection is not None

    def _usable(self, operation: str) -> bool:
        if self.connection is None:
            return False
        if self.breaker.open:
            self.metrics.cache_operations.labels(operation, "skipped").inc()
            return False
        return True

    def _succeeded(self) -> None:
        self.breaker.succeeded()

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def ping(self) -> None:
        """Raises when Redis does not answer; used by readiness only."""
        if self.connection is not None:
            [reply] = await self.connection.execute([("PING",)])
            if isinstance(reply, Exception):
                raise reply

    async def get_many(self, keys: Sequence[str]) -> list[Any | None]:
        """One MGET; a missing key, an unreadable value or a Redis error is a miss (None)."""
        if not keys or not self._usable("get"):
            return [None] * len(keys)
        try:
            (raw,) = await self._queue(("MGET", *keys))
        except (RedisError, OSError) as exc:
            self._failed("get", exc)
            return [None] * len(keys)
        self._succeeded()
        absent = raw.count(None)
        values = raw if absent == len(raw) else list(map(_read, raw))  # all missing: as they are
        hits = len(values) - values.count(None)
        self.metrics.child(self.metrics.cache_operations, "get", "hit").inc(hits)
        self.metrics.child(self.metrics.cache_operations, "get", "miss").inc(len(values) - hits)
        return values

    async def set_many(self, items: dict[str, Any], ttl_s: int) -> bool:
        """One round trip, shared with the other commands of this loop turn; values are stored
        as JSON, never pickled. False when nothing could be stored."""
        if not items or not self._usable("set"):
            return False
        try:
            await self._queue(*_sets(items, ttl_s))
        except (RedisError, OSError) as exc:
            self._failed("set", exc)
            return False
        self._succeeded()
        return True

    async def set_first(self, key: str, value: Any, ttl_s: int) -> Any | None:
        """`value` stored unless the key holds one already; the key's value either way (the
        first writer's, when several write at once), or None when Redis cannot say. One round
        trip: SET NX then GET, on any Redis version."""
        if not self._usable("set"):
            return None
        [(_, *options)] = _sets({key: value}, ttl_s)
        try:
            _, held = await self._queue(("SET", *options, "NX"), ("GET", key))
        except (RedisError, OSError) as exc:
            self._failed("set", exc)
            return None
        self._succeeded()
        return _read(held)

    def store(self, items: dict[str, Any], ttl_s: int) -> None:
        """`set_many` without waiting for Redis (a prediction's answer does not wait for its rows
        to be stored): the writes join this turn's pipeline, ahead of any later request's read."""
        if items and self._usable("set"):
            self._queue(*_sets(items, ttl_s)).add_done_callback(self._stored)

    def _stored(self, future: asyncio.Future[list[Any]]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is None:
            self._succeeded()
        elif isinstance(exc, RedisError | OSError):
            self._failed("set", exc)

    async def hit_window(self, key: str, window_s: int) -> int | None:
        """Count one hit in a fixed window; the count so far, or None when Redis is unreachable."""
        if not self._usable("incr"):
            return None
        try:
            # No MULTI: create the key with its expiry if absent, then count.
            _, count = await self._queue(("SET", key, 0, "EX", window_s, "NX"), ("INCR", key))
        except (RedisError, OSError) as exc:
            self._failed("incr", exc)
            return None
        self._succeeded()
        return int(count)

    def _queue(self, *commands: tuple[Any, ...]) -> asyncio.Future[list[Any]]:
        """The future of the commands' replies, sent with every other command queued in this
        loop turn, in one pipeline."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        if not self._queued:
            asyncio.get_running_loop().call_soon(self._send_queued)
        self._queued.append((commands, future))
        return future

    def _send_queued(self) -> None:
        queued, self._queued = self._queued, []
        task = asyncio.create_task(self._execute(queued))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _execute(self, queued: list[Queued]) -> None:
        """One pipeline for every queued command: the writes and counters as they are, then the
        MGETs as one MGET of all their keys (atomic for each caller, as MGET is), so a read sees
        every write queued before it."""
        assert self.connection is not None
        reads = [c for commands, _ in queued for c in commands if c[0] == "MGET"]
        others = [c for commands, _ in queued for c in commands if c[0] != "MGET"]
        # Each key once: requests of one turn often read the same key (a model's or a test's
        # token), and every copy would cost Redis, the reply and its decoding once more. A read
        # alone in its turn (a batch's, say) goes as it is, and its reply is its answer.
        alone = len(reads) == 1
        keys = reads[0][1:] if alone else tuple(dict.fromkeys(chain(*(c[1:] for c in reads))))
        try:
            replies = await self.connection.execute([*others, ("MGET", *keys)] if keys else others)
        except BaseException as exc:  # the connection: every command failed
            for _, future in queued:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        merged = replies.pop() if keys else []
        # Each MGET's share of the merged one (or the error it met), looked up in C.
        values = (
            None if alone or not isinstance(merged, list) else dict(zip(keys, merged, strict=True))
        )
        rest = iter(replies)
        for commands, future in queued:
            answers = [
                (merged if values is None else list(map(values.__getitem__, command[1:])))
                if command[0] == "MGET"
                else next(rest)
                for command in commands
            ]
            if future.done():  # its request went away
                continue
            error = next((a for a in answers if isinstance(a, Exception)), None)
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(answers)

    def _failed(self, operation: str, exc: Exception) -> None:
        self.metrics.cache_operations.labels(operation, "error").inc()
        self.breaker.failed()
        log.warning("redis %s failed: %s", operation, exc.__class__.__name__)

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()


# Many rows' writes go as one command: a pipeline of a thousand SETs costs the client far more
# to build and to read back than one script call carrying the same keys and values.
SET_ALL = "for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[i], 'EX', ARGV[#ARGV]) end"
SET_ALL_FROM = 4  # rows
_compact = json.JSONEncoder(separators=(",", ":")).encode  # built once: json.dumps with
# arguments builds an encoder on every call


def _sets(items: dict[str, Any], ttl_s: int) -> list[tuple[Any, ...]]:
    """The commands that store `items` as JSON for `ttl_s` seconds: written by orjson (in C;
    NaN and infinity as null, as the API answers them), by `json` what orjson refuses (integers
    past 64 bits)."""
    try:
        values: list[str | bytes] = list(map(orjson.dumps, items.values()))
    except TypeError:
        values = [_compact(value) for value in items.values()]
    if len(items) < SET_ALL_FROM:
        return [("SET", key, value, "EX", ttl_s) for key, value in zip(items, values, strict=True)]
    return [("EVAL", SET_ALL, len(items), *items, *values, ttl_s)]


def _read(value: bytes | None) -> Any:
    """A stored value, or None (a miss) when it is absent or unreadable."""
    if value is None:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        try:
            return json.loads(value)  # NaN or Infinity, as `json` writes them
        except ValueError:
            return None
