"""Authentication under a flood of bad keys and through a database outage: bad keys are
throttled per client address, and keys seen recently keep working while Postgres is gone, until
it answers again (then a revocation wins at once)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg

from app.core.config import Settings
from app.core.security import generate_key
from tests.api.test_errors import assert_problem
from tests.conftest import auth, create_key, serve
from tests.proxy import database_behind_proxy
from tests.services_under_test import sync_url

KEYS = "/api/v1/experiments"  # needs a key, and nothing from the database (MLflow answers)


async def test_a_flood_of_bad_keys_is_throttled_per_address(
    make_settings: Callable[..., Settings], admin_key: str
) -> None:
    async with serve(make_settings(auth_failures_per_minute=5)) as client:
        good = (await create_key(client, admin_key, "read"))["key"]
        assert (await client.get(KEYS, headers=auth(good))).status_code == 200  # trusted now
        bad = [await client.get(KEYS, headers=auth(generate_key())) for _ in range(5)]
        malformed = await client.get(KEYS, headers=auth("hk_short"))
        throttled = await client.get(KEYS, headers=auth(generate_key()))
        still_good = await client.get(KEYS, headers=auth(good))
        metrics = (await client.get("/metrics")).text
    for response in bad:
        assert_problem(response, 401, "unauthenticated")
    assert_problem(malformed, 429, "rate_limited")
    assert_problem(throttled, 429, "rate_limited")
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert still_good.status_code == 200, "a key already trusted is not throttled"
    assert 'hokusai_auth_failures_total{reason="throttled"} 2.0' in metrics


async def test_known_keys_keep_working_while_the_database_is_gone_then_revocation_wins(
    make_settings: Callable[..., Settings], admin_key: str, clean_database: str
) -> None:
    proxy, through = database_behind_proxy(clean_database)
    settings = make_settings(database_url=through, auth_cache_ttl_s=0.2, database_timeout_s=1)
    try:
        async with serve(settings) as client:
            user = await create_key(client, admin_key, "read", name="gtm")
            assert (await client.get(KEYS, headers=auth(user["key"]))).status_code == 200
            proxy.cut()
            await asyncio.sleep(0.3)  # past the trust: the key would be checked again
            during = [await client.get(KEYS, headers=auth(user["key"])) for _ in range(3)]
            stranger = await client.get(KEYS, headers=auth(generate_key()))
            with psycopg.connect(sync_url(clean_database), autocommit=True) as connection:
                connection.execute(  # revoked through another replica meanwhile
                    "UPDATE api_keys SET revoked_at = now() WHERE id = %s", (user["id"],)
                )
            proxy.restore()
            after = await client.get(KEYS, headers=auth(user["key"]))
            metrics = (await client.get("/metrics")).text
    finally:
        proxy.cut()
    assert [r.status_code for r in during] == [200, 200, 200], during[0].text
    assert_problem(stranger, 503, "database_unavailable")
    assert_problem(after, 401, "unauthenticated")
    assert "hokusai_auth_stale_total 3.0" in metrics


async def test_without_stale_if_error_a_database_outage_is_503(
    make_settings: Callable[..., Settings], admin_key: str, clean_database: str
) -> None:
    proxy, through = database_behind_proxy(clean_database)
    settings = make_settings(
        database_url=through, auth_cache_ttl_s=0.2, auth_stale_if_error_s=0, database_timeout_s=1
    )
    try:
        async with serve(settings) as client:
            user = await create_key(client, admin_key, "read")
            assert (await client.get(KEYS, headers=auth(user["key"]))).status_code == 200
            proxy.cut()
            await asyncio.sleep(0.3)
            during = await client.get(KEYS, headers=auth(user["key"]))
    finally:
        proxy.cut()
    assert_problem(during, 503, "database_unavailable")
