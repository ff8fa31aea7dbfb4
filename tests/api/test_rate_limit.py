from __future__ import annotations

from collections.abc import Callable

from app.core.config import Settings
from tests.api.test_errors import assert_problem
from tests.conftest import auth, create_key, serve
from tests.services_under_test import free_port


async def test_requests_past_the_per_key_limit_get_429_with_retry_after(
    make_settings: Callable[..., Settings], admin_key: str
) -> None:
    async with serve(make_settings(rate_limit_per_minute=3)) as client:
        statuses = [
            (await client.get("/api/v1/api-keys", headers=auth(admin_key))).status_code
            for _ in range(3)
        ]
        limited = await client.get("/api/v1/api-keys", headers=auth(admin_key))
        metrics = (await client.get("/metrics")).text
    assert statuses == [200, 200, 200]
    assert_problem(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert "hokusai_rate_limited_total 1.0" in metrics


async def test_each_key_has_its_own_budget(
    make_settings: Callable[..., Settings], admin_key: str
) -> None:
    async with serve(make_settings(rate_limit_per_minute=2)) as client:
        other = (await create_key(client, admin_key, "admin"))["key"]  # admin's first request
        await client.get("/api/v1/api-keys", headers=auth(admin_key))  # admin's second
        admin_limited = await client.get("/api/v1/api-keys", headers=auth(admin_key))
        other_ok = await client.get("/api/v1/api-keys", headers=auth(other))
    assert admin_limited.status_code == 429
    assert other_ok.status_code == 200


async def test_limit_fails_open_and_counts_it_when_redis_is_down(
    make_settings: Callable[..., Settings], admin_key: str
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    async with serve(make_settings(rate_limit_per_minute=1, redis_url=closed)) as client:
        statuses = [
            (await client.get("/api/v1/api-keys", headers=auth(admin_key))).status_code
            for _ in range(3)
        ]
        metrics = (await client.get("/metrics")).text
    assert statuses == [200, 200, 200]
    assert "hokusai_rate_limit_fail_open_total 3.0" in metrics
    errors = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("hokusai_cache_operations_total{") and 'result="error"' in line
    ]
    assert sum(errors) == 3, "three Redis errors open the breaker; then Redis is not asked"


async def test_zero_disables_the_limit(
    make_settings: Callable[..., Settings], admin_key: str
) -> None:
    async with serve(make_settings(rate_limit_per_minute=0)) as client:
        statuses = {
            (await client.get("/api/v1/api-keys", headers=auth(admin_key))).status_code
            for _ in range(5)
        }
    assert statuses == {200}
