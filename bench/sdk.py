"""The Python client's own cost per call, side by side with a bare `httpx` call on the same
server (the service in embedded mode, one uvicorn process): `GET /health` (the server does
nothing, so the client's share is largest) and an authenticated read (`GET /api/v1/api-keys`).
Sync and async, in alternating rounds; the figure is the median per-call time. Goal: under 10%.

    .venv/bin/python bench/sdk.py [--calls 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from hokusai import AsyncHokusaiClient, HokusaiClient  # noqa: E402

from app.core.security import generate_key  # noqa: E402
from bench.server import service  # noqa: E402


def per_call_us(call: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1e6


async def per_call_us_async(call: Callable[[], Awaitable[object]], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    key = generate_key()
    with tempfile.TemporaryDirectory() as workdir, service(workdir, key) as base:
        headers = {"Authorization": f"Bearer {key}"}
        bare = httpx.Client(base_url=base, headers=headers)
        client = HokusaiClient(base, key)
        pairs: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
            "sync  GET /health": (lambda: bare.get("/health").json(), client.health),
            "sync  GET /api/v1/api-keys": (
                lambda: bare.get("/api/v1/api-keys", params={"limit": 500, "offset": 0}).json(),
                lambda: next(iter(client.api_keys.list())),
            ),
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in pairs}
        for _ in range(args.rounds):
            for name, (raw, sdk) in pairs.items():
                results[name].append((per_call_us(raw, args.calls), per_call_us(sdk, args.calls)))

        async def async_rounds() -> list[tuple[float, float]]:
            async with (
                httpx.AsyncClient(base_url=base, headers=headers) as abare,
                AsyncHokusaiClient(base, key) as aclient,
            ):

                async def raw() -> object:
                    return (await abare.get("/health")).json()

                return [
                    (
                        await per_call_us_async(raw, args.calls),
                        await per_call_us_async(aclient.health, args.calls),
                    )
                    for _ in range(args.rounds)
                ]

        results["async GET /health"] = asyncio.run(async_rounds())

    print(f"\nper call, median of {args.rounds} rounds of {args.calls} calls, alternating\n")
    print(f"{'':32}{'httpx us':>10}{'hokusai us':>12}{'overhead':>10}   goal")
    for name, rounds in results.items():
        raw_us = statistics.median(r for r, _ in rounds)
        sdk_us = statistics.median(s for _, s in rounds)
        print(
            f"{name:32}{raw_us:>10.0f}{sdk_us:>12.0f}{(sdk_us / raw_us - 1) * 100:>9.1f}%   < 10%"
        )


if __name__ == "__main__":
    main()
