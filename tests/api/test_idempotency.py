from __future__ import annotations

import asyncio

import httpx

from tests.api.test_errors import assert_problem
from tests.conftest import auth, create_key


def keyed(admin_key: str, key: str) -> dict[str, str]:
    return {**auth(admin_key), "Idempotency-Key": key}


async def count_keys(client: httpx.AsyncClient, admin_key: str) -> int:
    total: int = (await client.get("/api/v1/api-keys", headers=auth(admin_key))).json()["total"]
    return total


async def test_same_key_and_body_replays_the_stored_response(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    body = {"name": "gtm", "scopes": ["predict"]}
    first = await client.post("/api/v1/api-keys", json=body, headers=keyed(admin_key, "k-1"))
    second = await client.post("/api/v1/api-keys", json=body, headers=keyed(admin_key, "k-1"))
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await count_keys(client, admin_key) == 2


async def test_same_key_with_another_body_is_409(client: httpx.AsyncClient, admin_key: str) -> None:
    await client.post(
        "/api/v1/api-keys", json={"name": "a", "scopes": ["read"]}, headers=keyed(admin_key, "k-2")
    )
    response = await client.post(
        "/api/v1/api-keys", json={"name": "b", "scopes": ["read"]}, headers=keyed(admin_key, "k-2")
    )
    assert_problem(response, 409, "idempotency_conflict")
    assert await count_keys(client, admin_key) == 2


async def test_without_the_header_every_post_creates(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    body = {"name": "same", "scopes": ["read"]}
    for _ in range(2):
        assert (
            await client.post("/api/v1/api-keys", json=body, headers=auth(admin_key))
        ).status_code == 201
    assert await count_keys(client, admin_key) == 3


async def test_keys_are_scoped_to_the_calling_api_key(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    other = (await create_key(client, admin_key, "admin"))["key"]
    body = {"name": "x", "scopes": ["read"]}
    mine = await client.post("/api/v1/api-keys", json=body, headers=keyed(admin_key, "shared"))
    theirs = await client.post("/api/v1/api-keys", json=body, headers=keyed(other, "shared"))
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


async def test_a_failed_request_stores_nothing_and_can_be_retried(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    bad = await client.post(
        "/api/v1/api-keys", json={"name": "x", "scopes": []}, headers=keyed(admin_key, "k-3")
    )
    assert bad.status_code == 422
    good = await client.post(
        "/api/v1/api-keys", json={"name": "x", "scopes": ["read"]}, headers=keyed(admin_key, "k-3")
    )
    assert good.status_code == 201
    assert "idempotent-replayed" not in good.headers


async def test_twenty_concurrent_duplicates_have_one_effect(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    body = {"name": "concurrent", "scopes": ["read"]}
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/api-keys", json=body, headers=keyed(admin_key, "burst"))
            for _ in range(20)
        )
    )
    assert {response.status_code for response in responses} == {201}
    assert len({response.json()["id"] for response in responses}) == 1
    assert len({response.json()["key"] for response in responses}) == 1
    assert sum("idempotent-replayed" in response.headers for response in responses) == 19
    assert await count_keys(client, admin_key) == 2
