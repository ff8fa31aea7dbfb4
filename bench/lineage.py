"""Lineage and contributor impact at scale, through the service, side by side with the naive
way (walking parent links one query at a time):

- lineage of a version at depth 1,000, in a chain of 1,000 versions and in a chain of 10,000;
- contributor impact for an address with 10,000 contributions.

The versions are written straight to Postgres (registering 11,000 real versions would only time
MLflow); their attestation ids are synthetic. Everything read is read through the API.

    scripts/with-services .venv/bin/python bench/lineage.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import select  # noqa: E402

from app.core.config import Settings  # noqa: E402
from app.core.security import generate_key  # noqa: E402
from app.db.models import MlModel, ModelVersion  # noqa: E402
from app.db.session import create_engine, create_sessionmaker  # noqa: E402
from bench.api_overhead import server_means  # noqa: E402
from bench.server import service, stores  # noqa: E402
from tests.factories import CHAIN_ADDRESS as ADDRESS  # noqa: E402
from tests.factories import seed_chain  # noqa: E402


async def walk_one_hop_at_a_time(database_url: str, name: str, version: int, depth: int) -> float:
    """The naive way: fetch the version, then its parent, one query per hop."""
    engine = create_engine(Settings(database_url=database_url, _env_file=None))  # type: ignore[call-arg]
    timings = []
    async with create_sessionmaker(engine)() as session:
        for _ in range(5):
            started = time.perf_counter()
            model = (
                await session.execute(select(MlModel).where(MlModel.name == name))
            ).scalar_one()
            row = (
                await session.execute(
                    select(ModelVersion).where(
                        ModelVersion.model_id == model.id, ModelVersion.version == version
                    )
                )
            ).scalar_one()
            hops = 0
            while row.parent_id is not None and hops < depth:
                row = (
                    await session.execute(
                        select(ModelVersion).where(ModelVersion.id == row.parent_id)
                    )
                ).scalar_one()
                hops += 1
            timings.append(time.perf_counter() - started)
            session.expunge_all()
    await engine.dispose()
    return statistics.median(timings)


def latency(client: httpx.Client, path: str, repeat: int) -> tuple[float, float, int]:
    client.get(path).raise_for_status()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        timings.append(time.perf_counter() - started)
        response.raise_for_status()
    ms = sorted(t * 1000 for t in timings)
    return statistics.median(ms), ms[min(len(ms) - 1, round(len(ms) * 0.95))], len(response.content)


def main() -> None:
    key = generate_key()
    with stores(migrated=True) as run:
        database_url = run.database_url
        asyncio.run(seed_chain(database_url, "chain-1k", 1000))
        asyncio.run(seed_chain(database_url, "chain-10k", 10_000))
        naive = {
            name: asyncio.run(walk_one_hop_at_a_time(database_url, name, last, 1000))
            for name, last in (("chain-1k", 1000), ("chain-10k", 10_000))
        }
        with (
            service(
                run.workdir,
                key,
                **run.settings,
            ) as base,
            httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
            ) as client,
        ):
            results = {
                "lineage, chain of 1,000, depth 1,000": latency(
                    client,
                    "/api/v1/models/chain-1k/lineage?version=1000&direction=ancestors&depth=1000",
                    30,
                ),
                "lineage, chain of 10,000, depth 1,000": latency(
                    client,
                    "/api/v1/models/chain-10k/lineage?version=10000&direction=ancestors&depth=1000",
                    30,
                ),
                "lineage, chain of 10,000, depth 10": latency(
                    client,
                    "/api/v1/models/chain-10k/lineage?version=10000&direction=ancestors&depth=10",
                    30,
                ),
                "impact, 10,999 contributions": latency(
                    client, f"/api/v1/contributors/{ADDRESS}/impact", 30
                ),
                "contributions page (50 of 10,999)": latency(
                    client, f"/api/v1/contributors/{ADDRESS}/contributions", 30
                ),
            }
            means = server_means(client.get("/metrics").text)

    print(f"\n{'request (through the API, loopback)':<44}{'p50 ms':>9}{'p95 ms':>9}{'bytes':>10}")
    for label, (p50, p95, size) in results.items():
        print(f"{label:<44}{p50:>9.1f}{p95:>9.1f}{size:>10}")
    print("\nmean server time per route (Prometheus sum / count, all calls above):")
    for route, mean in sorted(means.items()):
        if "lineage" in route or "contributors" in route:
            print(f"  {route:<58}{mean:>8.1f} ms")
    print("\nwalking parent links one query at a time (in-process, no HTTP), depth 1,000:")
    for name, seconds in naive.items():
        print(f"  {name:<20}{seconds * 1000:>9.1f} ms")


if __name__ == "__main__":
    main()
