"""Readiness: ping each dependency concurrently, each with its own short timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from app.adapters.cache import Cache
from app.adapters.registry import Registry
from app.core.metrics import Metrics
from app.db.session import ping as ping_database
from app.schemas.health import Check, Readiness


async def check_readiness(
    engine: AsyncEngine, registry: Registry, cache: Cache, metrics: Metrics, timeout_s: float
) -> Readiness:
    async def timed(name: str, ping: Callable[[], Awaitable[None]] | None) -> tuple[str, Check]:
        if ping is None:
            return name, Check(status="disabled")
        started = time.perf_counter()
        error: str | None = None
        try:
            await asyncio.wait_for(ping(), timeout_s)
        except TimeoutError:
            error = f"no answer within {timeout_s:g} s"
        except Exception as exc:
            error = f"{exc.__class__.__name__}: {_first_line(exc)}"
        elapsed = time.perf_counter() - started
        status = "up" if error is None else "down"
        metrics.dependency_seconds.labels(name, status).observe(elapsed)
        return name, Check(status=status, latency_ms=round(elapsed * 1000, 2), error=error)

    checks = dict(
        await asyncio.gather(
            timed("database", lambda: ping_database(engine)),
            timed("mlflow", lambda: registry.ping(timeout_s)),
            timed("redis", cache.ping if cache.enabled else None),
        )
    )
    if any(checks[name].status == "down" for name in ("database", "mlflow")):
        status = "unavailable"
    elif checks["redis"].status != "up":
        status = "degraded"
    else:
        status = "ready"
    return Readiness(status=status, checks=checks)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]
