"""Redis round trips from the API process, side by side: the service's pipelined connection
(`app/adapters/redis_connection.py`) and redis-py's asyncio client (what the service used before),
on the same Redis. Prints the CPU time the calling process spends per call (a one-key MGET, as a
cached prediction's lookup), one caller at a time and 32 at once, and the calls per second.

    scripts/with-services .venv/bin/python bench/cache.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis.asyncio as redis
import uvloop

from app.adapters.redis_connection import RedisConnection


async def measure(
    call: Callable[[], Awaitable[Any]], calls: int, callers: int
) -> tuple[float, float]:
    """CPU microseconds per call and calls per second, `callers` at a time."""

    async def caller() -> None:
        for _ in range(calls // callers):
            await call()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / calls * 1e6, calls / wall


async def main(url: str, calls: int) -> None:
    key = f"bench-{uuid.uuid4().hex}"
    ours = RedisConnection(url, timeout_s=2)
    theirs = redis.from_url(url)
    await ours.execute([("SET", key, '{"score":0.5}', "EX", 60)])
    clients: dict[str, Callable[[], Awaitable[Any]]] = {
        "pipelined connection (the service)": lambda: ours.execute([("MGET", key)]),
        "redis-py asyncio": lambda: theirs.execute_command("MGET", key),  # type: ignore[no-untyped-call]
    }
    print(f"{calls:,} one-key MGETs against {url}, pid {os.getpid()}")
    print(f"{'client':<36}{'callers':>8}{'CPU us/call':>14}{'calls/s':>12}")
    for callers in (1, 32):
        for name, call in clients.items():
            await measure(call, calls // 10, callers)  # warm-up
            cpu_us, rate = await measure(call, calls, callers)
            print(f"{name:<36}{callers:>8}{cpu_us:>14.1f}{rate:>12,.0f}")
    await ours.close()
    await theirs.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    url = os.environ.get("HOKUSAI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    uvloop.run(main(url, args.calls))
