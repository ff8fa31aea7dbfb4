"""Archiving models and versions: out of lists unless asked for, no alias, no predictions, no new
versions or tests; lineage and attestations stay readable and verifiable; nothing is deleted."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_ab_tests import create
from tests.api.test_errors import assert_problem
from tests.conftest import auth, create_key
from tests.factories import Model, baseline, upload, variant

ROW = {"f0": 0.1, "f1": 0.2, "f2": 0.3}


async def post(client: httpx.AsyncClient, key: str, path: str, **body: Any) -> httpx.Response:
    return await client.post(f"/api/v1/models/{path}", json=body or None, headers=auth(key))


async def test_an_archived_version_leaves_lists_takes_no_alias_and_serves_no_prediction(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    model = await Model.create(client, admin_key, archive)
    improved = await model.improve(0.9)  # v2, accepted and attested
    name, headers = model.name, auth(admin_key)

    archived = await post(client, admin_key, f"{name}/versions/2/archive")
    assert archived.status_code == 200, archived.text
    assert archived.json()["archived_at"] is not None
    again = await post(client, admin_key, f"{name}/versions/2/archive")
    assert again.json()["archived_at"] == archived.json()["archived_at"], "archiving is idempotent"

    listed = await model.get("/versions")
    assert [v["version"] for v in listed["items"]] == [1]
    assert listed["total"] == 1
    everything = await model.get("/versions", include_archived="true")
    assert [v["version"] for v in everything["items"]] == [2, 1]
    assert (await model.get(""))["latest_version"] == 1, "latest skips the archived version"
    assert (await model.get("/versions/2"))["archived_at"] is not None, "still readable by number"

    alias = await client.put(
        f"/api/v1/models/{name}/aliases/production", json={"version": 2}, headers=headers
    )
    assert_problem(alias, 409, "version_archived")
    predicted = await client.post(
        f"/api/v1/models/{name}/predict", json={"inputs": ROW, "version": 2}, headers=headers
    )
    assert_problem(predicted, 409, "version_archived")
    latest = await client.post(
        f"/api/v1/models/{name}/predict", json={"inputs": ROW}, headers=headers
    )
    assert latest.status_code == 200, latest.text
    assert latest.json()["version"] == 1, "no production: the latest unarchived version answers"

    lineage = await model.get("/lineage")
    assert {node["version"] for node in lineage["nodes"]} == {1, 2}
    envelope = (
        await client.get(f"/api/v1/attestations/{improved['attestation_id']}", headers=headers)
    ).json()["envelope"]
    verified = await client.post(
        "/api/v1/attestations/verify", json={"envelope": envelope}, headers=headers
    )
    assert verified.json()["valid"] is True

    restored = await post(client, admin_key, f"{name}/versions/2/unarchive")
    assert restored.json()["archived_at"] is None
    assert [v["version"] for v in (await model.get("/versions"))["items"]] == [2, 1]
    moved = await client.put(
        f"/api/v1/models/{name}/aliases/production", json={"version": 2}, headers=headers
    )
    assert moved.status_code == 200, moved.text


async def test_a_version_an_alias_or_a_live_test_points_at_is_not_archived(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    model = await Model.create(client, admin_key, archive)
    await model.improve(0.9)
    name, headers = model.name, auth(admin_key)
    await client.put(
        f"/api/v1/models/{name}/aliases/production", json={"version": 1}, headers=headers
    )
    held = await post(client, admin_key, f"{name}/versions/1/archive")
    assert "production" in assert_problem(held, 409, "in_use")["detail"]

    test = await create(client, admin_key, name)
    started = await client.post(f"/api/v1/ab-tests/{test['id']}/start", headers=headers)
    assert started.status_code == 200, started.text
    live = await post(client, admin_key, f"{name}/versions/2/archive")
    assert "checkout-test" in assert_problem(live, 409, "in_use")["detail"]
    whole = await post(client, admin_key, f"{name}/archive")
    assert_problem(whole, 409, "in_use")
    versions = await model.get("/versions")
    assert all(v["archived_at"] is None for v in versions["items"]), "nothing half-written"


async def test_an_archived_model_leaves_lists_and_takes_nothing_new_until_unarchived(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    model = await Model.create(client, admin_key, archive)
    name, headers = model.name, auth(admin_key)
    assert (
        await client.post(f"/api/v1/models/{name}/predict", json={"inputs": ROW}, headers=headers)
    ).status_code == 200

    archived = await post(client, admin_key, f"{name}/archive")
    assert archived.status_code == 200, archived.text
    assert archived.json()["archived_at"] is not None

    names = {
        m["name"] for m in (await client.get("/api/v1/models", headers=headers)).json()["items"]
    }
    assert name not in names
    every = (
        await client.get("/api/v1/models", params={"include_archived": "true"}, headers=headers)
    ).json()["items"]
    assert name in {m["name"] for m in every}
    assert (await model.get(""))["archived_at"] is not None, "still readable by name"

    predicted = await client.post(
        f"/api/v1/models/{name}/predict", json={"inputs": ROW}, headers=headers
    )
    assert_problem(predicted, 409, "model_archived")
    registered = await upload(client, admin_key, model.improvement(0.9), variant(archive))
    assert_problem(registered, 409, "model_archived")
    aliased = await client.put(
        f"/api/v1/models/{name}/aliases/staging", json={"version": 1}, headers=headers
    )
    assert_problem(aliased, 409, "model_archived")
    test = await client.post(
        "/api/v1/ab-tests",
        json={
            "name": "t",
            "model": name,
            "variants": [
                {"name": "a", "version": 1, "weight": 0.5},
                {"name": "b", "alias": "production", "weight": 0.5},
            ],
            "metric": {"name": "converted", "kind": "binary"},
        },
        headers=headers,
    )
    assert_problem(test, 409, "model_archived")
    assert (await model.get("/lineage"))["nodes"], "lineage stays readable"

    restored = await post(client, admin_key, f"{name}/unarchive")
    assert restored.json()["archived_at"] is None
    predicted = await client.post(
        f"/api/v1/models/{name}/predict", json={"inputs": ROW}, headers=headers
    )
    assert predicted.status_code == 200, predicted.text
    again = await upload(client, admin_key, baseline(name), archive)
    assert again.status_code == 201, again.text


async def test_archiving_needs_a_write_key(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    model = await Model.create(client, admin_key, archive)
    read_key = (await create_key(client, admin_key, "read"))["key"]
    refused = await post(client, read_key, f"{model.name}/archive")
    assert_problem(refused, 403, "forbidden")
    missing = await post(client, admin_key, "no-such-model/archive")
    assert_problem(missing, 404, "model_not_found")
