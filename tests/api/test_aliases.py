from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from mlflow import MlflowClient

from tests.api.test_errors import assert_problem
from tests.conftest import auth, create_key
from tests.factories import register_baseline, unique


async def model_with_versions(
    client: httpx.AsyncClient, key: str, archive: bytes, count: int
) -> str:
    name = unique()
    for _ in range(count):
        await register_baseline(client, key, archive, name)
    return name


async def put_alias(
    client: httpx.AsyncClient,
    key: str,
    name: str,
    alias: str,
    version: int,
    reason: str | None = None,
) -> httpx.Response:
    return await client.put(
        f"/api/v1/models/{name}/aliases/{alias}",
        json={"version": version, "reason": reason},
        headers=auth(key),
    )


async def test_aliases_move_with_history_and_mirror_to_mlflow(
    client: httpx.AsyncClient, admin_key: str, archive: bytes, mlflow_uri: str
) -> None:
    name = await model_with_versions(client, admin_key, archive, 3)
    writer = (await create_key(client, admin_key, "write", name="release-bot"))["key"]
    first = await put_alias(client, writer, name, "production", 1, "first release")
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1
    await put_alias(client, writer, name, "staging", 2)
    await put_alias(client, writer, name, "production", 3, "better model")
    headers = auth(admin_key)
    assert (await client.get(f"/api/v1/models/{name}/aliases", headers=headers)).json() == {
        "production": 3,
        "staging": 2,
    }
    version = (await client.get(f"/api/v1/models/{name}/versions/3", headers=headers)).json()
    assert version["aliases"] == ["production"]
    model = (await client.get(f"/api/v1/models/{name}", headers=headers)).json()
    assert model["aliases"] == {"production": 3, "staging": 2}
    history = (
        await client.get(f"/api/v1/models/{name}/aliases/production/history", headers=headers)
    ).json()
    assert [(e["from_version"], e["to_version"], e["reason"], e["actor"]) for e in history] == [
        (None, 1, "first release", "release-bot"),
        (1, 3, "better model", "release-bot"),
    ]
    mlflow = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    assert mlflow.get_model_version_by_alias(name, "production").version == "3"
    assert mlflow.get_model_version_by_alias(name, "staging").version == "2"


async def test_history_answers_what_an_alias_was_at_a_time(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    name = await model_with_versions(client, admin_key, archive, 2)
    before = datetime.now(UTC)
    await put_alias(client, admin_key, name, "production", 1)
    history = (
        await client.get(
            f"/api/v1/models/{name}/aliases/production/history", headers=auth(admin_key)
        )
    ).json()
    between = history[0]["at"]
    await put_alias(client, admin_key, name, "production", 2)

    async def at(moment: str) -> Any:
        response = await client.get(
            f"/api/v1/models/{name}/aliases/production/history",
            params={"at": moment},
            headers=auth(admin_key),
        )
        return response.json()["version"]

    assert await at(before.isoformat()) is None
    assert await at(between) == 1
    assert await at(datetime.now(UTC).isoformat()) == 2


async def test_setting_the_same_version_again_records_nothing(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    name = await model_with_versions(client, admin_key, archive, 1)
    await put_alias(client, admin_key, name, "champion", 1)
    await put_alias(client, admin_key, name, "champion", 1)
    history = (
        await client.get(f"/api/v1/models/{name}/aliases/champion/history", headers=auth(admin_key))
    ).json()
    assert len(history) == 1


async def test_delete_removes_the_alias_and_records_it(
    client: httpx.AsyncClient, admin_key: str, archive: bytes, mlflow_uri: str
) -> None:
    name = await model_with_versions(client, admin_key, archive, 1)
    await put_alias(client, admin_key, name, "staging", 1)
    deleted = await client.delete(f"/api/v1/models/{name}/aliases/staging", headers=auth(admin_key))
    assert deleted.status_code == 204
    assert (
        await client.get(f"/api/v1/models/{name}/aliases", headers=auth(admin_key))
    ).json() == {}
    history = (
        await client.get(f"/api/v1/models/{name}/aliases/staging/history", headers=auth(admin_key))
    ).json()
    assert [(e["from_version"], e["to_version"]) for e in history] == [(None, 1), (1, None)]
    assert "staging" not in MlflowClient(mlflow_uri, mlflow_uri).get_registered_model(name).aliases
    again = await client.delete(f"/api/v1/models/{name}/aliases/staging", headers=auth(admin_key))
    assert_problem(again, 404, "alias_not_found")


async def test_alias_errors(client: httpx.AsyncClient, admin_key: str, archive: bytes) -> None:
    name = await model_with_versions(client, admin_key, archive, 1)
    assert_problem(
        await put_alias(client, admin_key, name, "production", 5), 404, "version_not_found"
    )
    assert_problem(
        await put_alias(client, admin_key, "no-such-model", "production", 1), 404, "model_not_found"
    )
    assert_problem(
        await put_alias(client, admin_key, name, "Bad Alias", 1), 422, "validation_failed"
    )
    assert_problem(await put_alias(client, admin_key, name, "1st", 1), 422, "validation_failed")
    reader = (await create_key(client, admin_key, "read"))["key"]
    assert_problem(await put_alias(client, reader, name, "production", 1), 403, "forbidden")
    history = await client.get(
        f"/api/v1/models/{name}/aliases/never/history", headers=auth(admin_key)
    )
    assert_problem(history, 404, "alias_not_found")


async def test_rollback_returns_production_to_its_previous_version(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    name = await model_with_versions(client, admin_key, archive, 3)
    rollback = f"/api/v1/models/{name}/rollback"
    assert_problem(
        await client.post(rollback, json={}, headers=auth(admin_key)), 409, "rollback_unavailable"
    )
    await put_alias(client, admin_key, name, "production", 1)
    assert_problem(
        await client.post(rollback, json={}, headers=auth(admin_key)), 409, "rollback_unavailable"
    )
    await put_alias(client, admin_key, name, "production", 2)
    await put_alias(client, admin_key, name, "production", 3)
    back = await client.post(rollback, json={"reason": "regression"}, headers=auth(admin_key))
    assert back.status_code == 200, back.text
    assert back.json()["alias"] == "production"
    assert back.json()["version"] == 2
    named = await client.post(rollback, json={"to_version": 1}, headers=auth(admin_key))
    assert named.json()["version"] == 1
    never = await client.post(rollback, json={"to_version": 9}, headers=auth(admin_key))
    assert_problem(never, 409, "rollback_unavailable")
    history = (
        await client.get(
            f"/api/v1/models/{name}/aliases/production/history", headers=auth(admin_key)
        )
    ).json()
    assert [(e["from_version"], e["to_version"], e["reason"]) for e in history][-2:] == [
        (3, 2, "regression"),
        (2, 1, "rollback"),
    ]
