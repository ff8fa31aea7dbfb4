from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.core.config import Settings
from app.db.session import create_engine, unreachable
from tests.api.test_errors import assert_problem
from tests.conftest import auth, serve
from tests.factories import baseline, register_baseline, save_sklearn, tar_gz, unique, upload
from tests.proxy import Proxy, database_behind_proxy
from tests.services_under_test import free_port, sync_url


async def test_health_answers_ok_without_a_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_reports_each_dependency_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "mlflow", "redis", "runners"}
    for check in body["checks"].values():
        assert check["status"] == "up"
        assert check["latency_ms"] >= 0
    assert body["sandbox"]["mode"] == "required"
    assert body["sandbox"]["enforced"] is True, "this machine's kernel confines the runners"
    assert body["sandbox"]["landlock_abi"] >= 6
    assert body["sandbox"]["missing"] == []


async def test_ready_is_unavailable_when_database_port_is_closed(
    make_settings: Callable[..., Settings],
) -> None:
    closed = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    async with serve(make_settings(database_url=closed, bootstrap_api_key=None)) as client:
        started = time.monotonic()
        response = await client.get("/ready")
        elapsed = time.monotonic() - started
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["status"] == "down"
    assert body["checks"]["database"]["error"]
    assert body["checks"]["mlflow"]["status"] == "up"
    assert elapsed < 10, "readiness must not hang on a dead database"


async def test_ready_keeps_its_budget_when_the_database_hangs(
    make_settings: Callable[..., Settings], clean_database: str
) -> None:
    proxy, through = database_behind_proxy(clean_database)
    settings = make_settings(database_url=through, bootstrap_api_key=None, ready_timeout_s=1)
    try:
        async with serve(settings) as client:
            assert (await client.get("/ready")).status_code == 200  # a pooled connection, too
            proxy.freeze()
            timings, bodies = [], []
            for _ in range(3):
                started = time.monotonic()
                response = await client.get("/ready")
                timings.append(time.monotonic() - started)
                bodies.append(response.json())
                assert response.status_code == 503
            proxy.cut()  # what still waits on the hung server gives up now
    finally:
        proxy.cut()
    assert all(body["checks"]["database"]["status"] == "down" for body in bodies)
    assert all(body["checks"]["database"]["error"] == "no answer within 1 s" for body in bodies)
    assert max(timings) < 1 + 0.75, timings  # the budget, and a little for the other checks


async def test_ready_is_degraded_when_mlflow_port_is_closed(
    make_settings: Callable[..., Settings],
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with serve(make_settings(mlflow_tracking_uri=closed)) as client:
        response = await client.get("/ready")
    body = response.json()
    assert response.status_code == 200, "predictions of loaded models need no MLflow"
    assert body["status"] == "degraded"
    assert body["checks"]["mlflow"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "up"


async def test_ready_stays_200_while_predictions_work_without_mlflow_and_postgres(
    make_settings: Callable[..., Settings],
    clean_database: str,
    mlflow_uri: str,
    admin_key: str,
    tmp_path: Path,
) -> None:
    """A replica whose MLflow and then Postgres go away keeps serving the models it loaded to
    the keys it checked recently: readiness says `degraded` (200), never `unavailable`, so a
    balancer does not take the fleet out; predictions succeed all along."""
    target = urlsplit(mlflow_uri)
    mlflow = Proxy(target.hostname or "127.0.0.1", target.port or 80)
    database, through = database_behind_proxy(clean_database)
    settings = make_settings(
        database_url=through, mlflow_tracking_uri=mlflow.url, ready_timeout_s=1
    )
    archive = tar_gz(save_sklearn(tmp_path)[0])
    try:
        async with serve(settings) as client:
            name = unique()
            await register_baseline(client, admin_key, archive, name)
            rows = [{"f0": 0.1 * i, "f1": 0.2, "f2": 0.3} for i in range(3)]
            url = f"/api/v1/models/{name}/predict"
            first = await client.post(url, json={"inputs": rows[0]}, headers=auth(admin_key))
            assert first.status_code == 200, first.text
            ready = (await client.get("/ready")).json()
            assert ready["status"] == "ready", ready

            mlflow.cut()
            without_mlflow = await client.get("/ready")
            second = await client.post(url, json={"inputs": rows[1]}, headers=auth(admin_key))

            database.cut()
            without_both = await client.get("/ready")
            third = await client.post(url, json={"inputs": rows[2]}, headers=auth(admin_key))
    finally:
        mlflow.cut()
        database.cut()
    for ready, down in ((without_mlflow, {"mlflow"}), (without_both, {"mlflow", "database"})):
        body = ready.json()
        assert ready.status_code == 200, body
        assert body["status"] == "degraded"
        assert {n for n, check in body["checks"].items() if check["status"] == "down"} == down
    assert second.status_code == 200, second.text
    assert third.status_code == 200, third.text


async def test_ready_is_degraded_when_redis_port_is_closed(
    make_settings: Callable[..., Settings],
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    async with serve(make_settings(redis_url=closed)) as client:
        response = await client.get("/ready")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["status"] == "down"


async def test_ready_is_degraded_when_caching_is_off(
    make_settings: Callable[..., Settings],
) -> None:
    async with serve(make_settings(redis_url=None)) as client:
        response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["redis"] == {"status": "disabled"}


async def test_metrics_count_requests_by_route_template(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    await client.get("/api/v1/api-keys", headers=auth(admin_key))
    await client.delete(
        "/api/v1/api-keys/7b0e1c1e-2a6f-4d16-9a53-7a3b2a8f1a11", headers=auth(admin_key)
    )
    await client.get("/ready")
    response = await client.get("/metrics")
    text = response.text
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        'hokusai_http_requests_total{method="GET",route="/api/v1/api-keys",status="200"} 1.0'
        in text
    )
    assert 'route="/api/v1/api-keys/{api_key_id}",status="404"' in text
    assert "7b0e1c1e" not in text, "ids never become labels"
    assert "hokusai_http_request_duration_seconds_bucket" in text
    assert "hokusai_http_requests_in_flight" in text
    assert (
        'hokusai_dependency_check_duration_seconds_count{dependency="database",status="up"}' in text
    )
    assert "process_resident_memory_bytes" in text


async def test_the_event_loops_lag_is_measured(client: httpx.AsyncClient) -> None:
    """A timer every 100 ms says how late the loop ran it: the metric counts those samples."""
    import asyncio
    import re

    await asyncio.sleep(0.35)
    metrics = (await client.get("/metrics")).text
    count = re.search(r"^hokusai_event_loop_lag_seconds_count (\S+)$", metrics, re.MULTILINE)
    assert count is not None
    assert float(count.group(1)) >= 2


async def test_a_frozen_postgres_stops_no_prediction_and_other_calls_get_503(
    make_settings: Callable[..., Settings], clean_database: str, admin_key: str, tmp_path: Path
) -> None:
    """Postgres accepts and never answers for 6 s. Keys this replica checked recently keep
    predicting (their lookups give up within the database timeout, then are not tried again
    for a while); calls that need the database get 503 with Retry-After; after the thaw,
    everything works again."""
    proxy, through = database_behind_proxy(clean_database)
    settings = make_settings(
        database_url=through, database_timeout_s=1, auth_cache_ttl_s=0.2, retry_after_s=2
    )
    archive = tar_gz(save_sklearn(tmp_path)[0])
    try:
        async with serve(settings) as client:
            name = unique()
            await register_baseline(client, admin_key, archive, name)
            url = f"/api/v1/models/{name}/predict"
            row = {"f0": 0.1, "f1": 0.2, "f2": 0.3}
            assert (
                await client.post(url, json={"inputs": row}, headers=auth(admin_key))
            ).status_code == 200
            proxy.freeze()
            predictions, others = [], []
            frozen = time.monotonic()
            while time.monotonic() - frozen < 6:
                answer = await client.post(
                    url,
                    json={"inputs": {**row, "f0": time.monotonic() % 1}},
                    headers=auth(admin_key),
                )
                predictions.append(answer.status_code)
                started = time.monotonic()
                other = await client.get(f"/api/v1/models/{name}", headers=auth(admin_key))
                others.append((other.status_code, time.monotonic() - started))
                await asyncio.sleep(0.2)
            proxy.thaw()
            proxy.cut()  # connections stuck on the frozen server give up
            proxy.restore()
            await asyncio.sleep(settings.retry_after_s + 0.5)
            after = await client.get(f"/api/v1/models/{name}", headers=auth(admin_key))
    finally:
        proxy.cut()
    assert set(predictions) == {200}, predictions
    assert {status for status, _ in others[1:]} == {503}, others
    assert max(seconds for _, seconds in others[1:]) < 1.5, "503 within the database timeout"
    assert after.status_code == 200, after.text


@pytest.mark.parametrize(
    ("timeouts", "which"),
    [
        ({"database_lock_timeout_s": 0.5}, "lock_timeout"),
        ({"database_lock_timeout_s": 0, "database_statement_timeout_s": 0.5}, "statement_timeout"),
    ],
)
async def test_a_lock_held_elsewhere_is_a_fast_503_not_a_wait(
    make_settings: Callable[..., Settings],
    admin_key: str,
    database_url: str,
    timeouts: dict[str, float],
    which: str,
    tmp_path: Path,
) -> None:
    """Another session holds the model's row (an operator's open transaction, a stuck job): an
    alias move gives up at Postgres's lock (or statement) timeout with 503 and Retry-After."""
    name = unique()
    archive = tar_gz(save_sklearn(tmp_path)[0])
    async with serve(make_settings(**timeouts)) as client:
        assert (await upload(client, admin_key, baseline(name), archive)).status_code == 201
        with psycopg.connect(sync_url(database_url)) as holder:
            holder.execute("SELECT id FROM ml_models WHERE name = %s FOR UPDATE", (name,))
            started = time.monotonic()
            moved = await client.put(
                f"/api/v1/models/{name}/aliases/production",
                json={"version": 1},
                headers=auth(admin_key),
            )
            waited = time.monotonic() - started
            holder.rollback()
        after = await client.put(
            f"/api/v1/models/{name}/aliases/production",
            json={"version": 1},
            headers=auth(admin_key),
        )
    problem = assert_problem(moved, 503, "database_unavailable")
    assert "in time" in problem["detail"], which
    assert int(moved.headers["retry-after"]) >= 1
    assert waited < 3, f"gave up at the {which}, not at the client's patience: {waited:.1f} s"
    assert after.status_code == 200, "the lock released, the move goes through"


async def test_postgres_ends_a_session_left_idle_in_a_transaction(
    make_settings: Callable[..., Settings],
) -> None:
    """The service's engine asks Postgres to end any session idle inside a transaction past
    `HOKUSAI_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_S`: a stuck request cannot hold a lock."""
    engine = create_engine(make_settings(database_idle_in_transaction_timeout_s=0.3))
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            await asyncio.sleep(1.0)
            with pytest.raises(DBAPIError) as ended:
                await connection.execute(text("SELECT 1"))
        assert unreachable(ended.value)
    finally:
        await engine.dispose()
