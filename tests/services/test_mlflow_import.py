"""`hokusai-api import-mlflow` on a registry populated the way the upstream SDK did it: versions
tagged `model_id`, `is_baseline`, `baseline_id`, `metrics`, `contributor_address`,
`hokusai_token_id`, `benchmark_metric`... and a version whose run holds no model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from app.cli import import_registry
from app.core.config import Settings
from app.services.mlflow_import import ImportDefaults
from tests.conftest import auth, serve
from tests.factories import CONTRIBUTOR, DATASET, baseline, save_sklearn, tar_gz, unique, upload

DEFAULTS = ImportDefaults(
    dataset_hash=DATASET["hash"],
    num_samples=DATASET["num_samples"],
    direction="higher_is_better",
    family="proportion",
)


def upstream_version(
    client: MlflowClient, experiment: str, name: str, model_dir: Path, tags: dict[str, Any]
) -> None:
    """A version as upstream made it: a run holding the model, then the version, then its tags
    (a dict value as JSON)."""
    run = client.create_run(experiment)
    client.log_artifacts(run.info.run_id, str(model_dir), "model")
    version = client.create_model_version(
        name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    )
    for key, value in tags.items():
        text = json.dumps(value) if isinstance(value, dict) else str(value)
        client.set_model_version_tag(name, version.version, key, text)


def populate_like_upstream(mlflow_uri: str, name: str, model_dir: Path) -> None:
    client = MlflowClient(mlflow_uri, mlflow_uri)
    experiment = client.create_experiment(unique("upstream-exp"))
    client.create_registered_model(name, description=f"Hokusai model type: {name}")
    versions = [
        {
            "model_id": "base-1",
            "is_baseline": "true",
            "metrics": {"accuracy": 0.80},
            "hokusai_token_id": "UPLEAD",
            "benchmark_metric": "accuracy",
            "benchmark_value": "0.8",
        },
        {
            "model_id": "better-1",
            "is_baseline": "false",
            "baseline_id": "base-1",
            "metrics": {"accuracy": 0.86},
            "contributor_address": CONTRIBUTOR,
            "delta_metrics": {"accuracy": 0.06},
        },
        {
            "model_id": "orphan",
            "is_baseline": "false",
            "baseline_id": "nowhere",
            "metrics": {"accuracy": 0.9},
            "contributor_address": CONTRIBUTOR,
        },
    ]
    for tags in versions:
        upstream_version(client, experiment, name, model_dir, tags)
    # A version whose run holds no model (upstream registered versions before uploading).
    empty = client.create_run(experiment)
    hollow = client.create_model_version(
        name, f"runs:/{empty.info.run_id}/model", run_id=empty.info.run_id
    )
    for key, value in {
        "model_id": "hollow",
        "is_baseline": "true",
        "metrics": '{"accuracy": 0.7}',
        "benchmark_metric": "accuracy",
    }.items():
        client.set_model_version_tag(name, hollow.version, key, value)


async def test_an_upstream_registry_is_imported_once_without_inventing_anything(
    settings: Settings, mlflow_uri: str, admin_key: str, tmp_path: Path
) -> None:
    name = unique("upstream-reg")
    populate_like_upstream(mlflow_uri, name, save_sklearn(tmp_path)[0])
    before = len(MlflowClient(mlflow_uri, mlflow_uri).search_model_versions(f"name = '{name}'"))

    without_dataset = await import_registry(settings, [name], ImportDefaults(), dry_run=True)
    assert {o.action for o in without_dataset} == {"skipped"}
    assert "--dataset-hash" in without_dataset[0].reason

    planned = await import_registry(settings, [name], DEFAULTS, dry_run=True)
    assert [(o.version, o.action) for o in planned] == [
        (1, "would import"),
        (2, "would import"),
        (3, "skipped"),
        (4, "would import"),
    ]
    assert "nowhere" in planned[2].reason

    done = await import_registry(settings, [name], DEFAULTS, dry_run=False)
    again = await import_registry(settings, [name], DEFAULTS, dry_run=False)
    assert [(o.version, o.action) for o in done][:3] == [
        (1, "imported"),
        (2, "imported"),
        (3, "skipped"),
    ]
    assert done[3].action == "skipped", "a run without its model: reported, never invented"
    assert [o.action for o in again][:2] == ["already imported", "already imported"]
    assert "imported" not in {o.action for o in again}

    async with serve(settings) as client:
        versions = (
            await client.get(f"/api/v1/models/{name}/versions", headers=auth(admin_key))
        ).json()
        model = (await client.get(f"/api/v1/models/{name}", headers=auth(admin_key))).json()
    assert [(v["version"], v["kind"], v["parent_version"]) for v in versions["items"]] == [
        (2, "improved", 1),
        (1, "baseline", None),
    ]
    assert versions["items"][0]["delta"]["accuracy"]["gain_pp"] == pytest.approx(6.0)
    assert model["token_id"] == "UPLEAD"
    after = len(MlflowClient(mlflow_uri, mlflow_uri).search_model_versions(f"name = '{name}'"))
    assert after == before, "nothing created in MLflow"


async def test_an_import_is_announced_so_a_running_replica_serves_the_new_latest_at_once(
    settings: Settings, mlflow_uri: str, admin_key: str, tmp_path: Path
) -> None:
    """A replica has read (and remembers) which version is "latest"; an import from the command
    line adds a newer one and announces it, as a request's commit does: the replica's very next
    prediction uses it, not after the memory's lifetime."""
    name = unique("import-latest")
    model_dir = save_sklearn(tmp_path)[0]
    row = {"f0": 0.1, "f1": 0.2, "f2": 0.3}
    async with serve(settings) as replica:
        registered = await upload(replica, admin_key, baseline(name), tar_gz(model_dir))
        assert registered.status_code == 201, registered.text
        before = await replica.post(
            f"/api/v1/models/{name}/predict", json={"inputs": row}, headers=auth(admin_key)
        )
        assert before.json()["version"] == 1

        client = MlflowClient(mlflow_uri, mlflow_uri)
        upstream_version(
            client,
            client.get_experiment_by_name(name).experiment_id,
            name,
            model_dir,
            {
                "model_id": "upstream-2",
                "is_baseline": "true",
                "metrics": {"accuracy": 0.82},
                "benchmark_metric": "accuracy",
                "benchmark_value": "0.82",
            },
        )
        defaults = dataclasses.replace(DEFAULTS, model_type="classification")
        done = await import_registry(settings, [name], defaults, dry_run=False)
        assert [(o.version, o.action) for o in done] == [(1, "already imported"), (2, "imported")]

        after = await replica.post(
            f"/api/v1/models/{name}/predict", json={"inputs": row}, headers=auth(admin_key)
        )
    assert after.status_code == 200, after.text
    assert after.json()["version"] == 2, "the replica forgot its latest when the import committed"
