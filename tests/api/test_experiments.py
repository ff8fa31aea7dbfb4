from __future__ import annotations

import httpx

from tests.api.test_errors import assert_problem
from tests.conftest import auth
from tests.factories import improved, register_baseline, unique, upload


async def registered_pair(
    client: httpx.AsyncClient, key: str, archive: bytes
) -> tuple[str, dict, dict]:  # type: ignore[type-arg]
    name = unique()
    first = await register_baseline(client, key, archive, name)
    second = (await upload(client, key, improved(name), archive)).json()
    return name, first, second


async def test_experiments_and_runs_behind_registrations_are_listed(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    name, first, second = await registered_pair(client, admin_key, archive)
    experiments = (
        await client.get("/api/v1/experiments?limit=500", headers=auth(admin_key))
    ).json()
    experiment = next(e for e in experiments["items"] if e["name"] == name)
    assert experiments["total"] >= 1
    runs = (
        await client.get(
            f"/api/v1/experiments/{experiment['experiment_id']}/runs", headers=auth(admin_key)
        )
    ).json()
    assert runs["total"] == 2
    assert [r["run_id"] for r in runs["items"]] == [
        second["artifact"]["mlflow_run_id"],
        first["artifact"]["mlflow_run_id"],
    ]
    assert runs["items"][0]["metrics"] == {"accuracy": 0.83, "log_loss": 0.41}
    assert runs["items"][0]["status"] == "FINISHED"


async def test_unknown_experiment_is_404(client: httpx.AsyncClient, admin_key: str) -> None:
    response = await client.get("/api/v1/experiments/987654321/runs", headers=auth(admin_key))
    assert_problem(response, 404, "experiment_not_found")


async def test_runs_compare_with_the_delta_rules(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    name, first, second = await registered_pair(client, admin_key, archive)
    body = {
        "baseline_run_id": first["artifact"]["mlflow_run_id"],
        "candidate_run_id": second["artifact"]["mlflow_run_id"],
    }
    response = await client.post("/api/v1/experiments/compare", json=body, headers=auth(admin_key))
    assert response.status_code == 200, response.text
    metrics = response.json()["metrics"]
    assert metrics["accuracy"]["gain"] == 0.03
    assert metrics["accuracy"]["better"] == "candidate"
    assert metrics["log_loss"]["gain"] == 0.04
    only = await client.post(
        "/api/v1/experiments/compare",
        json={**body, "metric": "accuracy", "direction": "lower_is_better"},
        headers=auth(admin_key),
    )
    assert list(only.json()["metrics"]) == ["accuracy"]
    assert only.json()["metrics"]["accuracy"]["gain"] == -0.03
    against_version = await client.post(
        "/api/v1/experiments/compare",
        json={"candidate_run_id": second["artifact"]["mlflow_run_id"], "model": name, "version": 1},
        headers=auth(admin_key),
    )
    assert against_version.json()["baseline"] == f"models:/{name}/1"
    assert against_version.json()["metrics"]["accuracy"]["gain"] == 0.03


async def test_compare_errors(client: httpx.AsyncClient, admin_key: str, archive: bytes) -> None:
    headers = auth(admin_key)
    neither = await client.post(
        "/api/v1/experiments/compare", json={"candidate_run_id": "x"}, headers=headers
    )
    assert_problem(neither, 422, "validation_failed")
    unknown = await client.post(
        "/api/v1/experiments/compare",
        json={"candidate_run_id": "0" * 32, "baseline_run_id": "1" * 32},
        headers=headers,
    )
    assert_problem(unknown, 404, "run_not_found")
