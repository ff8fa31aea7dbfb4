"""Readiness: can this replica do its main job, serving predictions? Each dependency is pinged
concurrently, each within its own short budget. `unavailable` (503) only when it cannot: no
model runner can start, or neither the database nor the keys it recently checked can
authenticate a caller. A dependency down while predictions still work (MLflow, Redis, the
database while recent keys are still served) is `degraded` (200): a balancer gating on readiness
must not drop a whole fleet for what predictions do not need."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from app.adapters.cache import Cache
from app.adapters.registry import Registry
from app.adapters.runners import Runners
from app.core.errors import first_line
from app.core.metrics import Metrics
from app.core.security import PrincipalCache
from app.db.session import ping as ping_database
from app.schemas.health import DependencyCheck, Readiness, Sandbox

T = TypeVar("T")


async def check_readiness(
    engine: AsyncEngine,
    registry: Registry,
    cache: Cache,
    runners: Runners,
    principals: PrincipalCache,
    metrics: Metrics,
    timeout_s: float,
) -> Readiness:
    async def timed(
        name: str, ping: Callable[[], Awaitable[None]] | None
    ) -> tuple[str, DependencyCheck]:
        if ping is None:
            return name, DependencyCheck(status="disabled")
        started = time.perf_counter()
        error: str | None = None
        try:
            await within(ping(), timeout_s)
        except TimeoutError:
            error = f"no answer within {timeout_s:g} s"
        except Exception as exc:
            error = (
                str(exc)
                if isinstance(exc, RuntimeError)
                else f"{type(exc).__name__}: {first_line(exc)}"
            )
        elapsed = time.perf_counter() - started
        status = "up" if error is None else "down"
        metrics.dependency_seconds.labels(name, status).observe(elapsed)
        return name, DependencyCheck(
            status=status, latency_ms=round(elapsed * 1000, 2), error=error
        )

    async def runners_can_start() -> None:
        problem = runners.check()
        if problem:
            raise RuntimeError(problem)

    checks = dict(
        await asyncio.gather(
            timed("database", lambda: ping_database(engine)),
            timed("mlflow", lambda: registry.ping(timeout_s)),
            timed("redis", cache.ping if cache.enabled else None),
            timed("runners", runners_can_start),
        )
    )
    database_down = checks["database"].status == "down"
    if checks["runners"].status == "down" or (database_down and not principals.can_serve()):
        status = "unavailable"
    elif any(check.status != "up" for check in checks.values()):
        status = "degraded"
    else:
        status = "ready"
    return Readiness(status=status, checks=checks, sandbox=Sandbox(**runners.describe()))


async def within(work: Awaitable[T], timeout_s: float) -> T:
    """`work`, or TimeoutError once `timeout_s` has passed. Unlike `asyncio.wait_for`, it does not
    wait for the cancelled work to wind down: cancelling a query to a hung server makes the
    driver open a connection of its own to send the cancel request, which hangs as well."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if task in done:
        return task.result()
    task.cancel()
    task.add_done_callback(_forget)
    raise TimeoutError


def _forget(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a cancelled ping's late error is no news
