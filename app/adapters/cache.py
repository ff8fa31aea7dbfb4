"""Redis, with short timeouts. Any Redis error is a miss plus a metric; it never fails a request."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from app.core.metrics import Metrics

log = logging.getLogger(__name__)


class Cache:
    """A circuit breaker sits in front: after `breaker_failures` errors in a row, Redis is not
    asked for `breaker_cooldown_s` (every operation is an instant miss), then one call tries."""

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
        self.breaker_failures = breaker_failures
        self.breaker_cooldown_s = breaker_cooldown_s
        self._failures = 0
        self._open_until = 0.0
        self.client: redis.Redis | None = None
        if url is not None:
            self.client = redis.from_url(
                url,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                retry_on_timeout=False,
                health_check_interval=30,
            )

    @property
    def enabled(self) -> bool:
        return self.client is not None

    def _usable(self, operation: str) -> bool:
        if self.client is None:
            return False
        if self._open_until and time.monotonic() < self._open_until:
            self.metrics.cache_operations.labels(operation, "skipped").inc()
            return False
        return True

    def _succeeded(self) -> None:
        self._failures = 0
        self._open_until = 0.0

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def ping(self) -> None:
        """Raises when Redis does not answer; used by readiness only."""
        if self.client is not None:
            await self.client.ping()

    async def get_many(self, keys: Sequence[str]) -> list[Any | None]:
        """One round trip; a missing key, an unreadable value or a Redis error is a miss (None)."""
        if not keys or not self._usable("get"):
            return [None] * len(keys)
        assert self.client is not None
        try:
            raw = await self.client.mget(keys)
        except (RedisError, OSError) as exc:
            self._failed("get", exc)
            return [None] * len(keys)
        self._succeeded()
        values = [json.loads(value) if value is not None else None for value in raw]
        hits = sum(value is not None for value in values)
        self.metrics.cache_operations.labels("get", "hit").inc(hits)
        self.metrics.cache_operations.labels("get", "miss").inc(len(values) - hits)
        return values

    async def set_many(self, items: dict[str, Any], ttl_s: int) -> None:
        """One round trip; values are stored as JSON, never pickled."""
        if not items or not self._usable("set"):
            return
        assert self.client is not None
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, json.dumps(value, separators=(",", ":")), ex=ttl_s)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("set", exc)
            return
        self._succeeded()

    async def hit_window(self, key: str, window_s: int) -> int | None:
        """Count one hit in a fixed window; the count so far, or None when Redis is unreachable."""
        if not self._usable("incr"):
            return None
        assert self.client is not None
        try:
            # One round trip, no MULTI: create the key with its expiry if absent, then count.
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.set(key, 0, ex=window_s, nx=True)
                pipe.incr(key)
                _, count = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("incr", exc)
            return None
        self._succeeded()
        return int(count)

    def _failed(self, operation: str, exc: Exception) -> None:
        self.metrics.cache_operations.labels(operation, "error").inc()
        self._failures += 1
        if self._failures >= self.breaker_failures:
            self._open_until = time.monotonic() + self.breaker_cooldown_s
        log.warning("redis %s failed: %s", operation, exc.__class__.__name__)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
