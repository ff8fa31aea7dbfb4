"""A/B tests, side by side on one uvicorn server: assignment over HTTP against the ceiling
(`GET /health`), outcome ingestion in events/s (batches of 1,000), and results latency after
10^3 and after 10^6 events (all ingested through the API).

    scripts/with-services .venv/bin/python bench/ab.py [--duration 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from app.core.security import generate_key  # noqa: E402
from bench.api_overhead import server_means, wrk  # noqa: E402
from bench.server import service, stores  # noqa: E402
from tests.factories import baseline, save_sklearn, tar_gz  # noqa: E402

ASSIGN_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
-- each wrk thread has a Lua state of its own: its table's address keeps its units apart
thread_id = string.match(tostring({}), "0x(%%x+)")
run = os.time()
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"unit_id": "user-%%d-%%s-%%d"}', run, thread_id, counter)
  return wrk.format(nil, nil, nil, body)
end
"""
# The same 1,000 units over and over, as returning users or leads are.
RETURNING_LUA = ASSIGN_LUA.replace("counter)", "counter %% 1000)")


EXPOSED = 10_000  # units assigned before outcomes are posted: only exposed units count


async def expose(base: str, key: str, test_id: str) -> None:
    """Assign units u-0 .. u-9999, so the outcome batches count (not ignore) their events."""
    gate = asyncio.Semaphore(32)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as client:

        async def one(unit: int) -> None:
            async with gate:
                response = await client.post(
                    f"/api/v1/ab-tests/{test_id}/assign", json={"unit_id": f"u-{unit}"}
                )
                response.raise_for_status()

        await asyncio.gather(*(one(unit) for unit in range(EXPOSED)))


async def ingest(
    base: str, key: str, test_id: str, batches: int, start: int, workers: int = 4
) -> float:
    """Post `batches` batches of 1,000 binary outcomes with `workers` concurrent posters. The
    bodies are encoded before the clock starts: building them is the client's work, and on two
    shared cores it would otherwise slow the service it measures."""
    bodies = [
        json.dumps(
            {
                "events": [
                    {"unit_id": f"u-{(batch * 1000 + i) % EXPOSED}", "value": (batch + i) % 2}
                    for i in range(1000)
                ]
            }
        ).encode()
        for batch in range(start, start + batches)
    ]

    async def poster(client: httpx.AsyncClient) -> None:
        while bodies:
            response = await client.post(
                f"/api/v1/ab-tests/{test_id}/outcomes",
                content=bodies.pop(),
                headers={"Content-Type": "application/json"},
            )
            response.raise_for_status()

    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as client:
        started = time.perf_counter()
        await asyncio.gather(*(poster(client) for _ in range(workers)))
        return batches * 1000 / (time.perf_counter() - started)


def results_latency(client: httpx.Client, test_id: str, repeat: int = 50) -> tuple[float, float]:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(f"/api/v1/ab-tests/{test_id}/results").raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.95)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="ceiling/assignment runs")
    args = parser.parse_args()
    key = generate_key()
    with stores(real_mlflow=True) as run:
        model_dir, _ = save_sklearn(Path(run.workdir))
        with service(
            run.workdir,
            key,
            **run.settings,
            rate_limit_per_minute="0",
        ) as base:
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120
            ) as client:
                for _ in range(2):
                    client.post(
                        "/api/v1/models/register",
                        data={"metadata": json.dumps(baseline("bench-ab"))},
                        files={"artifact": ("m.tar.gz", tar_gz(model_dir))},
                    ).raise_for_status()
                test = client.post(
                    "/api/v1/ab-tests",
                    json={
                        "name": "bench",
                        "model": "bench-ab",
                        "metric": {"name": "converted", "kind": "binary"},
                        "variants": [
                            {"name": "a", "version": 1, "weight": 0.5},
                            {"name": "b", "version": 2, "weight": 0.5},
                        ],
                    },
                ).json()
                client.post(f"/api/v1/ab-tests/{test['id']}/start").raise_for_status()
                asyncio.run(expose(base, key, test["id"]))
                rate_small = asyncio.run(ingest(base, key, test["id"], 1, 0, workers=1))
                small = results_latency(client, test["id"])
                rate = asyncio.run(ingest(base, key, test["id"], 999, 1))
                large = results_latency(client, test["id"])
                n = sum(
                    v["n"]
                    for v in client.get(f"/api/v1/ab-tests/{test['id']}/results").json()["variants"]
                )
                means = server_means(client.get("/metrics").text)
            script = Path(run.workdir) / "assign.lua"
            script.write_text(ASSIGN_LUA % key)
            returning_script = Path(run.workdir) / "returning.lua"
            returning_script.write_text(RETURNING_LUA % key)
            wrk(f"{base}/health", 2, args.connections, {})
            # Runs go back to back, several times: this machine's speed drifts between runs, so
            # each assignment run is set against the ceiling run just before it.
            assign_url = f"{base}/api/v1/ab-tests/{test['id']}/assign"
            runs = []
            for _ in range(args.rounds):
                ceiling = wrk(f"{base}/health", args.duration, args.connections, {})
                assigned = wrk(assign_url, args.duration, args.connections, {}, script)
                returning = wrk(assign_url, args.duration, args.connections, {}, returning_script)
                runs.append((ceiling, assigned, returning))

    print(
        "\nunder load: uvicorn, 1 process; "
        f"wrk -t2 -c{args.connections} -d{args.duration}s, same host\n"
    )
    print(f"{'':<36}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'x ceiling':>11}")
    for round_, (ceiling, assigned, returning) in enumerate(runs, 1):
        for label, result in (
            (f"{round_}  ceiling: GET /health", ceiling),
            (f"{round_}  POST .../assign (new units)", assigned),
            (f"{round_}  POST .../assign (returning)", returning),
        ):
            print(
                f"{label:<36}{result['rps']:>9.0f}{result['p50']:>9.2f}{result['p99']:>9.2f}"
                f"{result['errors']:>9.0f}{result['rps'] / ceiling['rps']:>11.2f}"
            )
    ratios = sorted(assigned["rps"] / ceiling["rps"] for ceiling, assigned, _ in runs)
    print(
        f"assignment / ceiling: median {statistics.median(ratios):.2f} "
        f"(min {ratios[0]:.2f}, max {ratios[-1]:.2f}; goal 0.60)"
    )
    print(
        f"\noutcome ingestion, batches of 1,000: {rate:,.0f} events/s (4 posters); "
        f"{rate_small:,.0f} events/s (1 batch, 1 poster)"
    )
    print(f"results after 10^3 events: p50 {small[0]:.2f} ms, p95 {small[1]:.2f} ms")
    print(f"results after {n:,} events: p50 {large[0]:.2f} ms, p95 {large[1]:.2f} ms")
    for route, mean in sorted(means.items()):
        if "ab-tests" in route:
            print(f"  mean server time {route:<52}{mean:>8.2f} ms")


if __name__ == "__main__":
    main()
