from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient

from tests.api.test_errors import assert_problem
from tests.conftest import auth, create_key
from tests.factories import (
    CONTRIBUTOR,
    OTHER_CONTRIBUTOR,
    baseline,
    improved,
    register_baseline,
    save_sklearn,
    tar_gz,
    unique,
    upload,
    zipped,
)


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_sklearn(tmp_path_factory.mktemp("models"), "classifier")[0]


@pytest.fixture(scope="session")
def classifier_archive(classifier_dir: Path) -> bytes:
    return tar_gz(classifier_dir)


@pytest.fixture
def mlflow_client(mlflow_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)


async def test_upload_registers_a_baseline_in_postgres_and_mlflow(
    client: httpx.AsyncClient,
    admin_key: str,
    classifier_archive: bytes,
    mlflow_client: MlflowClient,
) -> None:
    name = unique()
    body = await register_baseline(
        client, admin_key, classifier_archive, name, token_id="lead-1", tags={"team": "gtm"}
    )
    assert body["model"] == name
    assert body["version"] == 1
    assert body["kind"] == "baseline"
    assert body["token_id"] == "LEAD-1"
    assert body["parent_version"] is None
    assert body["contributors"] == []
    assert body["delta"] is None
    assert body["artifact"]["digest"].startswith("sha256:")
    assert body["artifact"]["mlflow_run_id"]
    assert body["signature"] == [
        {"name": column, "type": "double", "required": True} for column in ("f0", "f1", "f2")
    ], "the input columns the MLmodel file declares"
    mlflow_version = mlflow_client.get_model_version(name, "1")
    assert mlflow_version.run_id == body["artifact"]["mlflow_run_id"]
    assert mlflow_version.tags["is_baseline"] == "true"
    assert mlflow_version.tags["benchmark_metric"] == "accuracy"
    assert mlflow_version.tags["benchmark_value"] == "0.8"
    assert mlflow_version.tags["hokusai_token_id"] == "LEAD-1"
    assert mlflow_version.tags["team"] == "gtm"
    assert mlflow_client.get_registered_model(name).tags["hokusai_token_id"] == "LEAD-1"
    run = mlflow_client.get_run(body["artifact"]["mlflow_run_id"])
    assert run.data.metrics["accuracy"] == 0.8
    assert run.info.status == "FINISHED", "finished before the response"
    assert run.info.experiment_id == mlflow_client.get_experiment_by_name(name).experiment_id
    model = (await client.get(f"/api/v1/models/{name}", headers=auth(admin_key))).json()
    assert model["latest_version"] == 1
    assert model["benchmark"]["metric"] == "accuracy"
    assert model["model_type"] == "classification"


async def test_same_model_in_either_archive_format_has_the_same_digest(
    client: httpx.AsyncClient, admin_key: str, classifier_dir: Path
) -> None:
    as_tar = await register_baseline(client, admin_key, tar_gz(classifier_dir))
    in_folder = await register_baseline(client, admin_key, tar_gz(classifier_dir, top="model"))
    response = await upload(
        client, admin_key, baseline(unique()), zipped(classifier_dir), filename="model.zip"
    )
    assert response.status_code == 201, response.text
    assert as_tar["artifact"]["digest"] == in_folder["artifact"]["digest"]
    assert as_tar["artifact"]["digest"] == response.json()["artifact"]["digest"]


async def test_json_form_registers_an_artifact_already_in_mlflow(
    client: httpx.AsyncClient, admin_key: str, classifier_archive: bytes
) -> None:
    first = await register_baseline(client, admin_key, classifier_archive)
    source = f"runs:/{first['artifact']['mlflow_run_id']}/model"
    name = unique()
    response = await client.post(
        "/api/v1/models/register",
        json={**baseline(name), "source_uri": source},
        headers=auth(admin_key),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["artifact"]["source_uri"] == source
    assert body["artifact"]["digest"] == first["artifact"]["digest"]
    assert body["artifact"]["mlflow_run_id"] == first["artifact"]["mlflow_run_id"]
    by_model = await client.post(
        "/api/v1/models/register",
        json={**baseline(unique()), "source_uri": f"models:/{name}/1"},
        headers=auth(admin_key),
    )
    assert by_model.status_code == 201, by_model.text
    assert by_model.json()["artifact"]["digest"] == first["artifact"]["digest"]


async def test_unknown_source_uri_is_invalid_artifact(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    response = await client.post(
        "/api/v1/models/register",
        json={**baseline(unique()), "source_uri": f"runs:/{uuid.uuid4().hex}/model"},
        headers=auth(admin_key),
    )
    assert_problem(response, 400, "invalid_artifact")


async def test_improved_version_gets_parent_contributors_and_delta(
    client: httpx.AsyncClient,
    admin_key: str,
    classifier_archive: bytes,
    mlflow_client: MlflowClient,
) -> None:
    name = unique()
    await register_baseline(client, admin_key, classifier_archive, name)
    contributors = [
        {"address": CONTRIBUTOR.lower(), "weight": 1},
        {"address": OTHER_CONTRIBUTOR, "weight": 2},
    ]
    response = await upload(
        client, admin_key, improved(name, contributors=contributors), classifier_archive
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["version"] == 2
    assert body["parent_version"] == 1
    assert body["benchmark"]["metric"] == "accuracy"
    assert body["contributors"] == [
        {"address": OTHER_CONTRIBUTOR, "weight_bps": 6667},
        {"address": CONTRIBUTOR, "weight_bps": 3333},
    ]
    assert body["delta"]["accuracy"] == {
        "parent": 0.8,
        "candidate": 0.83,
        "absolute": 0.03,
        "relative": 0.0375,
        "gain": 0.03,
        "gain_pp": 3.0,
    }
    assert body["delta"]["log_loss"]["gain"] == 0.04  # lower is better: a drop is a gain
    assert body["delta"]["log_loss"]["gain_pp"] is None
    tags = mlflow_client.get_model_version(name, "2").tags
    assert tags["is_baseline"] == "false"
    assert tags["baseline_id"] == "1"
    assert tags["contributor_address"] == OTHER_CONTRIBUTOR


async def test_improved_defaults_to_the_production_version_as_parent(
    client: httpx.AsyncClient, admin_key: str, classifier_archive: bytes
) -> None:
    name = unique()
    await register_baseline(client, admin_key, classifier_archive, name)
    await register_baseline(client, admin_key, classifier_archive, name)
    await client.put(
        f"/api/v1/models/{name}/aliases/production", json={"version": 1}, headers=auth(admin_key)
    )
    response = await upload(client, admin_key, improved(name), classifier_archive)
    assert response.json()["parent_version"] == 1
    explicit = await upload(client, admin_key, improved(name, parent_version=2), classifier_archive)
    assert explicit.json()["parent_version"] == 2


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"name": "Bad Name"}, 422, "validation_failed", "name"),
        ({"token_id": "-bad-"}, 422, "validation_failed", "token_id"),
        ({"metrics": {"accuracy": 1.2}}, 422, "validation_failed", "accuracy"),
        ({"metrics": {"accuracy": True}}, 422, "validation_failed", "accuracy"),
        ({"metrics": {"bad name!": 0.5, "accuracy": 0.5}}, 422, "validation_failed", "metrics"),
        ({"metrics": {"f1": 0.5}}, 422, "validation_failed", "metrics"),
        ({"dataset": {"hash": "sha256:XYZ", "num_samples": 10}}, 422, "validation_failed", "hash"),
        (
            {"dataset": {"hash": "sha256:" + "a" * 64, "num_samples": 0}},
            422,
            "validation_failed",
            "num_samples",
        ),
        ({"benchmark": None}, 422, "validation_failed", "benchmark"),
        ({"model_type": None}, 422, "validation_failed", "model_type"),
        ({"model_type": "vision"}, 422, "validation_failed", "model_type"),
        (
            {"contributors": [{"address": CONTRIBUTOR, "weight": 1}]},
            422,
            "validation_failed",
            "contributors",
        ),
        ({"unknown_field": 1}, 422, "validation_failed", "unknown_field"),
    ],
)
async def test_invalid_registrations_name_the_field_and_leave_nothing(
    client: httpx.AsyncClient,
    admin_key: str,
    classifier_archive: bytes,
    change: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    name = change.get("name") or unique()
    metadata = {**baseline(name), **change}
    response = await upload(client, admin_key, metadata, classifier_archive)
    body = assert_problem(response, status, code)
    assert field in response.text
    assert body["errors"]  # type: ignore[truthy-bool]
    missing = await client.get(f"/api/v1/models/{name}", headers=auth(admin_key))
    assert missing.status_code == 404


async def test_nan_and_infinity_are_refused(client: httpx.AsyncClient, admin_key: str) -> None:
    for value in ("NaN", "Infinity", "-Infinity"):
        raw = (
            '{"name": "x", "kind": "baseline", "model_type": "custom", "source_uri": "runs:/a/m",'
            ' "dataset": {"hash": "sha256:' + "a" * 64 + '", "num_samples": 1},'
            ' "benchmark": {"metric": "m", "direction": "higher_is_better",'
            ' "family": "continuous"},'
            ' "metrics": {"m": ' + value + "}}"
        )
        response = await client.post(
            "/api/v1/models/register",
            content=raw,
            headers={**auth(admin_key), "content-type": "application/json"},
        )
        assert_problem(response, 422, "validation_failed")


async def test_registration_rules_against_existing_models(
    client: httpx.AsyncClient, admin_key: str, classifier_archive: bytes
) -> None:
    name = unique()
    await register_baseline(client, admin_key, classifier_archive, name, token_id="TOK-A")
    cases = [
        (improved(unique()), 404, "model_not_found"),
        (improved(name, parent_version=99), 404, "version_not_found"),
        (baseline(name, model_type="regression"), 422, "model_type_mismatch"),
        (baseline(unique(), token_id="tok-a"), 409, "token_id_taken"),
        (
            improved(name, contributors=[{"address": CONTRIBUTOR.replace("a", "A"), "weight": 1}]),
            422,
            "invalid_address",
        ),
        (improved(name, contributors=[{"address": "0x123", "weight": 1}]), 422, "invalid_address"),
        (
            improved(
                name,
                contributors=[
                    {"address": CONTRIBUTOR, "weight": 1},
                    {"address": CONTRIBUTOR.lower(), "weight": 2},
                ],
            ),
            422,
            "validation_failed",
        ),
        (
            improved(name, contributors=[{"address": CONTRIBUTOR, "weight": 0}]),
            422,
            "validation_failed",
        ),
        (improved(name, contributors=[]), 422, "validation_failed"),
        (improved(name, benchmark=baseline(name)["benchmark"]), 422, "validation_failed"),
    ]
    for metadata, status, code in cases:
        response = await upload(client, admin_key, metadata, classifier_archive)
        assert_problem(response, status, code)
    versions = (await client.get(f"/api/v1/models/{name}/versions", headers=auth(admin_key))).json()
    assert versions["total"] == 1


async def test_write_scope_is_needed_to_register(
    client: httpx.AsyncClient, admin_key: str, classifier_archive: bytes
) -> None:
    reader = (await create_key(client, admin_key, "read", "predict"))["key"]
    response = await upload(client, reader, baseline(unique()), classifier_archive)
    assert_problem(response, 403, "forbidden")


async def test_other_media_types_are_415(client: httpx.AsyncClient, admin_key: str) -> None:
    response = await client.post(
        "/api/v1/models/register",
        content=b"name=x",
        headers={**auth(admin_key), "content-type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 415, "unsupported_media_type")


async def test_multipart_without_both_parts_is_422(
    client: httpx.AsyncClient, admin_key: str, classifier_archive: bytes
) -> None:
    response = await client.post(
        "/api/v1/models/register",
        files={"artifact": ("m.tar.gz", classifier_archive)},
        headers=auth(admin_key),
    )
    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"] == [
        {"loc": ["body", "metadata"], "msg": "Field required", "type": "missing"}
    ]


async def test_reads_list_filter_and_page(
    client: httpx.AsyncClient, admin_key: str, classifier_archive: bytes
) -> None:
    first, second = unique("a"), unique("b")
    await register_baseline(client, admin_key, classifier_archive, first, token_id="READS-1")
    await register_baseline(
        client, admin_key, classifier_archive, second, model_type="lead_scoring"
    )
    await register_baseline(client, admin_key, classifier_archive, second, model_type=None)
    headers = auth(admin_key)
    listed = (await client.get("/api/v1/models", headers=headers)).json()
    assert [m["name"] for m in listed["items"]] == [first, second]
    by_token = (await client.get("/api/v1/models?token_id=reads-1", headers=headers)).json()
    assert [m["name"] for m in by_token["items"]] == [first]
    by_type = (await client.get("/api/v1/models?model_type=lead_scoring", headers=headers)).json()
    assert [m["name"] for m in by_type["items"]] == [second]
    # `search`: the name or the token id contains the text, in any case, taken literally.
    for text, found in [
        (first[2:].upper(), [first]),
        ("ads-", [first]),
        ("-", [first, second]),
        ("%", []),
        ("_", []),
        ("\\", []),
        ("", [first, second]),
    ]:
        searched = await client.get("/api/v1/models", params={"search": text}, headers=headers)
        assert [m["name"] for m in searched.json()["items"]] == found, text
    assert_problem(
        await client.get("/api/v1/models", params={"search": "x" * 201}, headers=headers),
        422,
        "validation_failed",
    )
    versions = (await client.get(f"/api/v1/models/{second}/versions", headers=headers)).json()
    assert [v["version"] for v in versions["items"]] == [2, 1]
    page = (
        await client.get(f"/api/v1/models/{second}/versions?limit=1&offset=1", headers=headers)
    ).json()
    assert [v["version"] for v in page["items"]] == [1]
    assert page["total"] == 2
    assert_problem(
        await client.get(f"/api/v1/models/{second}/versions/7", headers=headers),
        404,
        "version_not_found",
    )
    assert_problem(
        await client.get("/api/v1/models/nope-nope", headers=headers), 404, "model_not_found"
    )


async def test_patch_changes_description_and_tags_in_both_stores(
    client: httpx.AsyncClient,
    admin_key: str,
    classifier_archive: bytes,
    mlflow_client: MlflowClient,
) -> None:
    name = unique()
    await register_baseline(client, admin_key, classifier_archive, name, tags={"old": "1"})
    headers = auth(admin_key)
    model = await client.patch(
        f"/api/v1/models/{name}",
        json={"description": "Lead scorer", "tags": {"team": "gtm"}},
        headers=headers,
    )
    assert model.status_code == 200, model.text
    assert model.json()["description"] == "Lead scorer"
    assert model.json()["tags"] == {"team": "gtm"}
    registered = mlflow_client.get_registered_model(name)
    assert registered.description == "Lead scorer"
    assert registered.tags["team"] == "gtm"
    assert registered.tags["model_type"] == "classification", "the service's own tags stay"
    version = await client.patch(
        f"/api/v1/models/{name}/versions/1", json={"tags": {"new": "2"}}, headers=headers
    )
    assert version.json()["tags"] == {"new": "2"}
    mlflow_tags = mlflow_client.get_model_version(name, "1").tags
    assert mlflow_tags["new"] == "2"
    assert "old" not in mlflow_tags
    assert mlflow_tags["is_baseline"] == "true", "the service's own tags stay"
    refused = await client.patch(
        f"/api/v1/models/{name}/versions/1", json={"metrics": {}}, headers=headers
    )
    assert_problem(refused, 422, "validation_failed")


async def test_artifact_downloads_as_the_registered_model(
    client: httpx.AsyncClient, admin_key: str, classifier_archive: bytes, tmp_path: Path
) -> None:
    from app.adapters.artifacts import digest, unpack

    body = await register_baseline(client, admin_key, classifier_archive)
    response = await client.get(
        f"/api/v1/models/{body['model']}/versions/1/artifact", headers=auth(admin_key)
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].endswith('-v1.tar.gz"')
    assert response.headers["x-artifact-digest"] == body["artifact"]["digest"]
    archive = tmp_path / "download.tar.gz"
    archive.write_bytes(response.content)
    root = unpack(archive, tmp_path / "out", max_bytes=10**9, max_ratio=1000)
    assert digest(root) == body["artifact"]["digest"]


async def test_compare_gives_direction_aware_gains(
    client: httpx.AsyncClient, admin_key: str, classifier_archive: bytes
) -> None:
    name = unique()
    await register_baseline(client, admin_key, classifier_archive, name)
    await upload(
        client,
        admin_key,
        improved(name, metrics={"accuracy": 0.79, "log_loss": 0.4}),
        classifier_archive,
    )
    response = await client.get(
        f"/api/v1/models/{name}/compare?base=1&candidate=2", headers=auth(admin_key)
    )
    body = response.json()
    assert body["primary_metric"] == "accuracy"
    assert body["metrics"]["accuracy"] == {
        "base": 0.8,
        "candidate": 0.79,
        "absolute": -0.01,
        "relative": -0.0125,
        "gain": -0.01,
        "better": "base",
    }
    assert body["metrics"]["log_loss"]["gain"] == 0.05
    assert body["metrics"]["log_loss"]["better"] == "candidate"
    missing = await client.get(
        f"/api/v1/models/{name}/compare?base=1&candidate=9", headers=auth(admin_key)
    )
    assert_problem(missing, 404, "version_not_found")


async def test_registered_models_load_back_and_predict_like_the_originals(
    client: httpx.AsyncClient, admin_key: str, tmp_path: Path
) -> None:
    """Registered, then loaded by a runner from MLflow's copy, a model answers as the
    estimator it was saved from, with its signature's columns enforced."""
    from tests.factories import training_data

    frame, _, _ = training_data()
    rows = frame.head(20).to_dict(orient="records")
    for kind, model_type, metric in (
        ("classifier", "classification", "accuracy"),
        ("regressor", "regression", "rmse"),
    ):
        directory, estimator = save_sklearn(tmp_path, kind)
        family = "proportion" if metric == "accuracy" else "continuous"
        direction = "higher_is_better" if metric == "accuracy" else "lower_is_better"
        body = await register_baseline(
            client,
            admin_key,
            tar_gz(directory),
            model_type=model_type,
            metrics={metric: 0.5},
            benchmark={"metric": metric, "direction": direction, "family": family},
        )
        predicted = await client.post(
            f"/api/v1/models/{body['model']}/predict",
            json={"inputs": rows, "version": body["version"]},
            headers=auth(admin_key),
        )
        assert predicted.status_code == 200, predicted.text
        want = list(estimator.predict(frame.head(20)))
        assert predicted.json()["predictions"] == pytest.approx(want)
        wrong = await client.post(
            f"/api/v1/models/{body['model']}/predict",
            json={"inputs": {"f0": 1.0, "f1": 2.0, "extra": 3.0}},
            headers=auth(admin_key),
        )
        assert_problem(wrong, 422, "validation_failed")
        assert "f2" in wrong.json()["detail"]
        assert "extra" in wrong.json()["detail"]


@pytest.mark.parametrize(
    "mlmodel",
    [
        b"flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n",  # none declared
        b'flavors: {}\nsignature:\n  inputs: \'[{"type": "tensor", "tensor-spec": {}}]\'\n',
        b"flavors: {}\nsignature:\n  inputs: 'not json'\n",
        b"flavors: {}\nsignature: [1, 2]\n",
        b"!!python/object/apply:os.system ['true']\n",  # code, were it loaded unsafely
        b"\xff\xfe not utf-8",
        b"a: " + b"[" * 100_000,  # YAML nested past any parser's recursion
        b"flavors: {}\nsignature:\n  inputs: '" + b"[" * 100_000 + b"'\n",  # JSON, likewise
    ],
)
def test_an_mlmodel_without_a_readable_column_signature_has_none(
    tmp_path: Path, mlmodel: bytes
) -> None:
    from app.adapters.artifacts import input_signature

    (tmp_path / "MLmodel").write_bytes(mlmodel)
    assert input_signature(tmp_path) is None
