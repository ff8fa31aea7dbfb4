from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from app.cli import main
from app.core.config import Settings
from tests.api.test_errors import assert_problem
from tests.conftest import auth, create_key, serve


async def test_create_returns_the_secret_once_and_lists_without_it(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    created = await create_key(client, admin_key, "read", "predict", name="gtm-backend")
    assert created["key"].startswith("hk_")
    assert len(created["key"]) > 40
    assert created["scopes"] == ["read", "predict"]
    assert created["key"].startswith(created["prefix"])
    listed = (await client.get("/api/v1/api-keys", headers=auth(admin_key))).json()
    assert listed["total"] == 2
    assert {item["name"] for item in listed["items"]} == {"bootstrap", "gtm-backend"}
    assert created["key"] not in str(listed)
    assert all("key" not in item for item in listed["items"])


async def test_new_key_authenticates_with_bearer_and_x_api_key(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    key = (await create_key(client, admin_key, "admin"))["key"]
    assert (await client.get("/api/v1/api-keys", headers=auth(key))).status_code == 200
    assert (await client.get("/api/v1/api-keys", headers={"X-API-Key": key})).status_code == 200


async def test_missing_key_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/api-keys")
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_unknown_key_is_401(client: httpx.AsyncClient, admin_key: str) -> None:
    forged = admin_key[:-4] + ("AAAA" if not admin_key.endswith("AAAA") else "BBBB")
    assert_problem(
        await client.get("/api/v1/api-keys", headers=auth(forged)), 401, "unauthenticated"
    )
    assert_problem(
        await client.get("/api/v1/api-keys", headers=auth("hk_x")), 401, "unauthenticated"
    )


async def test_key_in_the_query_string_is_ignored(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    response = await client.get(f"/api/v1/api-keys?api_key={admin_key}&key={admin_key}")
    assert_problem(response, 401, "unauthenticated")


async def test_revoked_key_is_401(client: httpx.AsyncClient, admin_key: str) -> None:
    created = await create_key(client, admin_key, "admin")
    assert (await client.get("/api/v1/api-keys", headers=auth(created["key"]))).status_code == 200
    revoked = await client.delete(f"/api/v1/api-keys/{created['id']}", headers=auth(admin_key))
    assert revoked.status_code == 204
    assert_problem(
        await client.get("/api/v1/api-keys", headers=auth(created["key"])), 401, "unauthenticated"
    )
    listed = (await client.get("/api/v1/api-keys", headers=auth(admin_key))).json()
    assert next(i for i in listed["items"] if i["id"] == created["id"])["revoked_at"] is not None


async def test_revoking_an_unknown_key_is_404(client: httpx.AsyncClient, admin_key: str) -> None:
    response = await client.delete(f"/api/v1/api-keys/{uuid.uuid4()}", headers=auth(admin_key))
    assert_problem(response, 404, "api_key_not_found")


@pytest.mark.parametrize(
    "scopes", [("read",), ("predict",), ("write",), ("read", "write", "predict")]
)
async def test_admin_endpoints_refuse_keys_without_admin_scope(
    client: httpx.AsyncClient, admin_key: str, scopes: tuple[str, ...]
) -> None:
    key = (await create_key(client, admin_key, *scopes))["key"]
    assert_problem(await client.get("/api/v1/api-keys", headers=auth(key)), 403, "forbidden")
    response = await client.post(
        "/api/v1/api-keys", json={"name": "escalate", "scopes": ["admin"]}, headers=auth(key)
    )
    assert_problem(response, 403, "forbidden")


async def test_list_pages_with_limit_and_offset(client: httpx.AsyncClient, admin_key: str) -> None:
    for index in range(4):
        await create_key(client, admin_key, "read", name=f"k{index}")
    page = (await client.get("/api/v1/api-keys?limit=2&offset=1", headers=auth(admin_key))).json()
    assert page["total"] == 5
    assert page["limit"] == 2
    assert page["offset"] == 1
    assert [item["name"] for item in page["items"]] == ["k0", "k1"]
    beyond = (await client.get("/api/v1/api-keys?offset=10", headers=auth(admin_key))).json()
    assert beyond["items"] == []
    assert beyond["total"] == 5
    too_many = await client.get("/api/v1/api-keys?limit=501", headers=auth(admin_key))
    assert_problem(too_many, 422, "validation_failed")


async def test_repeated_scopes_are_refused(client: httpx.AsyncClient, admin_key: str) -> None:
    response = await client.post(
        "/api/v1/api-keys", json={"name": "x", "scopes": ["read", "read"]}, headers=auth(admin_key)
    )
    assert_problem(response, 422, "validation_failed")


async def test_bootstrap_key_is_registered_once_across_restarts(
    make_settings: Callable[..., Settings], admin_key: str
) -> None:
    settings = make_settings()
    for _ in range(2):
        async with serve(settings) as client:
            listed = (await client.get("/api/v1/api-keys", headers=auth(admin_key))).json()
    assert [item["name"] for item in listed["items"]] == ["bootstrap"]
    assert listed["items"][0]["scopes"] == ["admin"]


def test_command_line_creates_lists_and_revokes_keys(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    monkeypatch.setenv("HOKUSAI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HOKUSAI_LOG_LEVEL", "WARNING")
    main(["api-key", "create", "--name", "cli-made", "--scopes", "read,predict"])
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("hk_")
    main(["api-key", "list"])
    listed = json.loads(capsys.readouterr().out)
    made = next(item for item in listed if item["name"] == "cli-made")
    assert made["scopes"] == ["read", "predict"]
    assert secret.startswith(made["prefix"])
    main(["api-key", "revoke", made["id"]])
    main(["api-key", "list"])
    out = capsys.readouterr().out
    listed = json.loads(out[out.index("[") :])
    assert next(item for item in listed if item["name"] == "cli-made")["revoked_at"] is not None


def test_command_line_refuses_unknown_scopes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["api-key", "create", "--name", "x", "--scopes", "read,root"])
    assert "scopes are" in capsys.readouterr().err


@pytest.mark.parametrize(("ttl_s", "wait_s"), [(0.5, 0.6), (0.0, 0.0)])
async def test_a_key_revoked_by_another_process_is_refused_once_the_cache_ttl_passes(
    make_settings: Callable[..., Settings],
    admin_key: str,
    monkeypatch: pytest.MonkeyPatch,
    ttl_s: float,
    wait_s: float,
) -> None:
    """A replica trusts a checked key for `auth_cache_ttl_s`; 0 means every request checks."""
    import asyncio

    async with serve(make_settings(auth_cache_ttl_s=ttl_s)) as client:
        created = await create_key(client, admin_key, "admin")
        first = await client.get("/api/v1/api-keys", headers=auth(created["key"]))
        assert first.status_code == 200
        monkeypatch.setenv("HOKUSAI_DATABASE_URL", client.app.state.resources.settings.database_url)  # type: ignore[attr-defined]
        await asyncio.to_thread(main, ["api-key", "revoke", created["id"]])
        await asyncio.sleep(wait_s)
        response = await client.get("/api/v1/api-keys", headers=auth(created["key"]))
    assert_problem(response, 401, "unauthenticated")


async def test_requests_with_a_key_not_yet_trusted_share_one_database_lookup(
    make_settings: Callable[..., Settings], admin_key: str
) -> None:
    """When a busy key's trust runs out, its requests in flight do not each query the
    database: the first looks the key up, the others wait for that answer."""
    import asyncio

    def lookups(metrics: str) -> float:
        [line] = [x for x in metrics.splitlines() if x.startswith("hokusai_auth_lookups_total ")]
        return float(line.split()[1])

    async with serve(make_settings(auth_cache_ttl_s=60)) as client:
        key = (await create_key(client, admin_key, "admin"))["key"]
        before = lookups((await client.get("/metrics", headers=auth(admin_key))).text)
        answers = await asyncio.gather(
            *(client.get("/api/v1/api-keys/current", headers=auth(key)) for _ in range(20))
        )
        after = lookups((await client.get("/metrics", headers=auth(admin_key))).text)
        again = await client.get("/api/v1/api-keys/current", headers=auth(key))
        last = lookups((await client.get("/metrics", headers=auth(admin_key))).text)
        forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
        refused = await asyncio.gather(
            *(client.get("/api/v1/api-keys/current", headers=auth(forged)) for _ in range(5))
        )
    assert [answer.status_code for answer in answers] == [200] * 20
    assert after - before == 1
    assert again.status_code == 200
    assert last == after  # trusted now: no lookup at all
    for answer in refused:  # a shared answer of "unknown" refuses every waiter
        assert_problem(answer, 401, "unauthenticated")


async def test_any_key_reads_its_own_name_and_effective_scopes(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    for scopes, effective in [
        (["read"], ["read"]),
        (["predict"], ["predict"]),
        (["write"], ["read", "write"]),
        (["admin"], ["read", "predict", "write", "benchmark", "admin"]),
        (["benchmark"], ["read", "benchmark"]),
    ]:
        created = await create_key(client, admin_key, *scopes, name=f"only-{scopes[0]}")
        current = await client.get("/api/v1/api-keys/current", headers=auth(created["key"]))
        assert current.status_code == 200
        assert current.json() == {
            "id": created["id"],
            "name": f"only-{scopes[0]}",
            "scopes": effective,
        }
    assert_problem(await client.get("/api/v1/api-keys/current"), 401, "unauthenticated")
    # `current` is no key id: only GET is served there.
    refused = await client.delete("/api/v1/api-keys/current", headers=auth(admin_key))
    assert_problem(refused, 405, "method_not_allowed")
    assert refused.headers["allow"] == "GET"
    assert_problem(
        await client.delete("/api/v1/api-keys/not-a-uuid", headers=auth(admin_key)),
        404,
        "not_found",
    )
