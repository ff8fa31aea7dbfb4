"""No Postgres transaction or row lock across an MLflow call, and the reconciler that removes what
a failed registration left in MLflow and repairs aliases MLflow missed."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
from mlflow import MlflowClient

from app.cli import reconcile_registry
from app.core.config import Settings
from tests.api.test_errors import assert_problem
from tests.conftest import auth, serve
from tests.factories import baseline, improved, unique, upload
from tests.proxy import Proxy
from tests.services_under_test import refused_at_commit, sync_url


def mlflow_versions(mlflow_uri: str, name: str) -> list[int]:
    client = MlflowClient(mlflow_uri, mlflow_uri)
    return sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))


def mlflow_aliases(mlflow_uri: str, name: str) -> dict[str, int]:
    model = MlflowClient(mlflow_uri, mlflow_uri).get_registered_model(name)
    return {alias: int(version) for alias, version in model.aliases.items()}


@contextlib.asynccontextmanager
async def idle_in_transaction(database_url: str) -> AsyncIterator[list[int]]:
    """Samples, every 20 ms while open, how many connections to the database have sat idle in a
    transaction for over half a second: what a request holding a transaction across an MLflow
    call (1.5 s here) looks like; between two statements of one request is much shorter."""
    samples: list[int] = []
    stop = asyncio.Event()

    async def sample() -> None:
        async with await psycopg.AsyncConnection.connect(
            sync_url(database_url), autocommit=True
        ) as connection:
            while not stop.is_set():
                cursor = await connection.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'idle in transaction' AND pid <> pg_backend_pid() "
                    "AND now() - state_change > interval '500 milliseconds'"
                )
                row = await cursor.fetchone()
                samples.append(int(row[0]) if row else 0)
                await asyncio.sleep(0.02)

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        stop.set()
        await task


async def test_a_hung_mlflow_holds_no_transaction_and_alias_moves_still_commit(
    make_settings: Callable[..., Settings],
    admin_key: str,
    archive: bytes,
    mlflow_uri: str,
    database_url: str,
) -> None:
    """MLflow frozen: registrations fail (503) and alias moves commit, and at no moment is a
    connection idle in transaction; once MLflow answers, the reconciler mirrors the moves."""
    target = urlsplit(mlflow_uri)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 80)
    settings = make_settings(
        mlflow_tracking_uri=proxy.url,
        mlflow_timeout_s=1.5,
        mlflow_probe_timeout_s=0.5,
        mlflow_breaker_cooldown_s=60,
    )
    name = unique()
    try:
        async with serve(settings) as client:
            for _ in range(2):
                registered = await upload(client, admin_key, baseline(name), archive)
                assert registered.status_code == 201, registered.text
            proxy.freeze()
            async with idle_in_transaction(database_url) as samples:
                responses = await asyncio.gather(
                    *(
                        upload(client, admin_key, baseline(name), archive, idempotency_key=f"h{i}")
                        for i in range(3)
                    ),
                    client.put(
                        f"/api/v1/models/{name}/aliases/production",
                        json={"version": 2},
                        headers=auth(admin_key),
                    ),
                    client.put(
                        f"/api/v1/models/{name}/aliases/staging",
                        json={"version": 1},
                        headers=auth(admin_key),
                    ),
                )
            aliases = (
                await client.get(f"/api/v1/models/{name}/aliases", headers=auth(admin_key))
            ).json()
    finally:
        proxy.cut()
    *registrations, production, staging = responses
    for registration in registrations:
        assert_problem(registration, 503, "registry_unavailable")
    assert production.status_code == staging.status_code == 200, (production.text, staging.text)
    assert aliases == {"production": 2, "staging": 1}
    assert len(samples) > 20, "sampled all through the hang"
    assert max(samples) == 0, f"connections idle in transaction during the hang: {samples}"

    assert mlflow_aliases(mlflow_uri, name) == {}, "the mirror could not reach MLflow"
    findings = await reconcile_registry(make_settings(registry_orphan_grace_s=0), dry_run=False)
    assert (name, "production", 2) in findings.aliases
    assert mlflow_aliases(mlflow_uri, name) == {"production": 2, "staging": 1}
    assert mlflow_versions(mlflow_uri, name) == [1, 2], "0 orphans: MLflow holds what Postgres does"


async def test_a_version_no_row_recorded_is_deleted_after_its_grace_and_never_while_claimed(
    client: httpx.AsyncClient,
    make_settings: Callable[..., Settings],
    admin_key: str,
    archive: bytes,
    mlflow_uri: str,
    database_url: str,
) -> None:
    name = unique()
    first = await upload(client, admin_key, baseline(name), archive)
    assert first.status_code == 201, first.text
    with refused_at_commit(database_url, "model_versions"):
        failed = await upload(client, admin_key, improved(name), archive, idempotency_key="k")
    assert_problem(failed, 500, "internal_error")
    assert mlflow_versions(mlflow_uri, name) == [1, 2], "MLflow went first: version 2 is orphaned"

    in_grace = await reconcile_registry(make_settings(registry_orphan_grace_s=3600), dry_run=False)
    assert (name, 2) in {(v.name, v.version) for v in in_grace.waiting}
    assert mlflow_versions(mlflow_uri, name) == [1, 2], "a retry may still reuse it"

    # A request with the same Idempotency-Key in flight (its claim) keeps it too.
    me = (await client.get("/api/v1/api-keys/current", headers=auth(admin_key))).json()
    now = datetime.now(UTC)
    with psycopg.connect(sync_url(database_url), autocommit=True) as connection:
        connection.execute(
            "INSERT INTO idempotency_records (api_key_id, key, fingerprint, created_at, "
            "expires_at) VALUES (%s, 'k', 'x', %s, %s)",
            (uuid.UUID(me["id"]), now, now + timedelta(minutes=5)),
        )
    claimed = await reconcile_registry(make_settings(registry_orphan_grace_s=0), dry_run=False)
    assert (name, 2) in {(v.name, v.version) for v in claimed.waiting}
    assert mlflow_versions(mlflow_uri, name) == [1, 2]
    with psycopg.connect(sync_url(database_url), autocommit=True) as connection:
        connection.execute("DELETE FROM idempotency_records WHERE key = 'k'")

    preview = await reconcile_registry(make_settings(registry_orphan_grace_s=0), dry_run=True)
    orphans = {(v.name, v.version) for v in preview.orphans}
    assert (name, 2) in orphans
    assert (name, 1) not in orphans
    assert mlflow_versions(mlflow_uri, name) == [1, 2], "a dry run changes nothing"
    done = await reconcile_registry(make_settings(registry_orphan_grace_s=0), dry_run=False)
    assert (name, 2) in {(v.name, v.version) for v in done.orphans}
    assert mlflow_versions(mlflow_uri, name) == [1], "0 orphans left"
    again = await reconcile_registry(make_settings(registry_orphan_grace_s=0), dry_run=False)
    assert name not in {v.name for v in again.orphans + again.waiting}

    # The same key again registers anew; MLflow does not reuse a number: the gap stays.
    retried = await upload(client, admin_key, improved(name), archive, idempotency_key="k")
    assert retried.status_code == 201, retried.text
    assert retried.json()["version"] == 3
    versions = (await client.get(f"/api/v1/models/{name}/versions", headers=auth(admin_key))).json()
    assert sorted(v["version"] for v in versions["items"]) == [1, 3]


async def test_the_reconciler_runs_at_start_up_and_counts_what_it_repaired(
    make_settings: Callable[..., Settings],
    admin_key: str,
    archive: bytes,
    mlflow_uri: str,
    database_url: str,
    tmp_path: Path,
) -> None:
    name = unique()
    async with serve(make_settings()) as client:
        assert (await upload(client, admin_key, baseline(name), archive)).status_code == 201
        moved = await client.put(
            f"/api/v1/models/{name}/aliases/production",
            json={"version": 1},
            headers=auth(admin_key),
        )
        assert moved.status_code == 200
    MlflowClient(mlflow_uri, mlflow_uri).delete_registered_model_alias(name, "production")
    settings = make_settings(registry_reconcile_interval_s=3600)
    repaired = 'hokusai_registry_repairs_total{kind="alias"}'
    async with serve(settings) as client:
        for _ in range(600):  # the first pass runs in the background at start-up
            metrics = (await client.get("/metrics")).text
            if repaired in metrics:  # counted once MLflow took the alias
                break
            await asyncio.sleep(0.05)
    assert mlflow_aliases(mlflow_uri, name) == {"production": 1}
    assert repaired in metrics
    assert "hokusai_registry_orphan_versions" in metrics
