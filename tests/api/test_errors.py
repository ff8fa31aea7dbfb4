from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from tests.conftest import auth, serve
from tests.services_under_test import free_port, refused_at_commit

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:hokusai:problem:{code}"
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_path_is_a_json_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/nothing-here"), 404, "not_found")


async def test_wrong_method_is_a_json_405(client: httpx.AsyncClient) -> None:
    assert_problem(await client.put("/health"), 405, "method_not_allowed")


async def test_validation_failure_lists_each_field(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    response = await client.post(
        "/api/v1/api-keys", json={"name": "", "scopes": ["read", "root"]}, headers=auth(admin_key)
    )
    body = assert_problem(response, 422, "validation_failed")
    locs = {tuple(error["loc"]) for error in body["errors"]}  # type: ignore[attr-defined]
    assert locs == {("body", "name"), ("body", "scopes", 1)}


async def test_malformed_json_is_a_validation_problem(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    response = await client.post(
        "/api/v1/api-keys",
        content=b'{"name": "x", "scopes": [',
        headers={**auth(admin_key), "content-type": "application/json"},
    )
    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"][0]["type"] == "json_invalid"  # type: ignore[index]


async def test_oversize_body_with_content_length_is_413(
    make_settings: Callable[..., Settings], admin_key: str
) -> None:
    async with serve(make_settings(max_body_bytes=2048)) as client:
        response = await client.post(
            "/api/v1/api-keys",
            json={"name": "x" * 5000, "scopes": ["read"]},
            headers=auth(admin_key),
        )
    assert_problem(response, 413, "payload_too_large")


async def test_oversize_streamed_body_without_length_is_413(
    make_settings: Callable[..., Settings], admin_key: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"x" * 1024
        yield b'", "scopes": ["read"]}'

    async with serve(make_settings(max_body_bytes=4096)) as client:
        response = await client.post(
            "/api/v1/api-keys",
            content=chunks(),
            headers={**auth(admin_key), "content-type": "application/json"},
        )
        listed = await client.get("/api/v1/api-keys", headers=auth(admin_key))
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")
    assert listed.json()["total"] == 1, "nothing was created"


async def test_unhandled_error_is_a_500_that_reveals_nothing(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(settings) as client:

        async def explode() -> None:
            raise RuntimeError("secret internal detail")

        client.app.add_api_route("/explode", explode)  # type: ignore[attr-defined]
        with caplog.at_level(logging.ERROR):
            response = await client.get("/explode", headers={"X-Request-ID": "req-500"})
    body = assert_problem(response, 500, "internal_error")
    assert "secret" not in response.text
    assert body["request_id"] == "req-500"
    record = next(r for r in caplog.records if r.exc_info)
    assert "secret internal detail" in str(record.exc_info[1])  # type: ignore[index]


async def test_database_down_is_a_fast_503_with_retry_after(
    make_settings: Callable[..., Settings], admin_key: str
) -> None:
    closed = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    async with serve(make_settings(database_url=closed, bootstrap_api_key=None)) as client:
        response = await client.get("/api/v1/api-keys", headers=auth(admin_key))
    assert_problem(response, 503, "database_unavailable")
    assert int(response.headers["retry-after"]) >= 1


async def test_a_failed_commit_is_an_error_response_not_a_2xx(
    client: httpx.AsyncClient, admin_key: str, database_url: str
) -> None:
    """The session commits before the response is sent: a commit that fails (here a deferred
    constraint trigger that fires only at COMMIT) must turn into an error, with nothing stored."""
    with refused_at_commit(database_url, "api_keys", when="NEW.name = 'refused-at-commit'"):
        response = await client.post(
            "/api/v1/api-keys",
            json={"name": "refused-at-commit", "scopes": ["read"]},
            headers=auth(admin_key),
        )
    listed = await client.get("/api/v1/api-keys", headers=auth(admin_key))
    assert_problem(response, 500, "internal_error")
    assert [key["name"] for key in listed.json()["items"]] == ["bootstrap"]


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "gtm-42.abc"})
    assert response.headers["x-request-id"] == "gtm-42.abc"


async def test_request_id_is_generated_when_absent_or_unusable(client: httpx.AsyncClient) -> None:
    first = await client.get("/health")
    second = await client.get("/health", headers={"X-Request-ID": "bad id with spaces" * 20})
    assert len(first.headers["x-request-id"]) == 32
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    assert " " not in second.headers["x-request-id"]


async def test_logs_are_json_and_carry_the_request_id(
    client: httpx.AsyncClient, capfd: pytest.CaptureFixture[str]
) -> None:
    import json

    from app.core.logging import configure_logging

    configure_logging("INFO")
    try:
        await client.get("/health", headers={"X-Request-ID": "log-me-1"})
    finally:
        logging.getLogger().handlers.clear()
    lines = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    access = [line for line in lines if line.get("request_id") == "log-me-1"]
    assert access
    assert access[0]["route"] == "/health"
    assert access[0]["status"] == 200


async def test_a_422_says_each_field_as_written_and_what_is_wrong(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    """The registration's JSON travels in a multipart part named `metadata`: the detail names
    `dataset.hash`, as the user wrote it, and says how to make a good one."""
    from tests.factories import baseline, unique, upload

    metadata = baseline(unique(), dataset={"hash": "abc", "num_samples": 10})
    metadata.pop("model_type")
    metadata["name"] = "has space"
    response = await upload(client, admin_key, metadata, b"not read")
    problem = assert_problem(response, 422, "validation_failed")
    detail = problem["detail"]
    assert "dataset.hash: must look like sha256:<64 hex digits>" in detail
    assert "hokusai.dataset_hash()" in detail
    assert "name: String should match pattern" in detail
    assert "metadata" not in detail
    assert ["body", "metadata", "dataset", "hash"] in [e["loc"] for e in problem["errors"]]

    metrics = await client.post(
        "/api/v1/models/register",
        json={**baseline(unique()), "source_uri": "runs:/abc/model", "metrics": {"auc": True}},
        headers=auth(admin_key),
    )
    detail = assert_problem(metrics, 422, "validation_failed")["detail"]
    assert "metrics.auc: Input should be a valid number" in detail
    limit = await client.get("/api/v1/models?limit=0", headers=auth(admin_key))
    assert "query.limit: Input should be greater than or equal to 1" in limit.json()["detail"]


async def test_an_unknown_model_suggests_the_nearest_name(
    client: httpx.AsyncClient, admin_key: str, tmp_path: Path
) -> None:
    from tests.factories import baseline, save_sklearn, tar_gz, upload

    archive = tar_gz(save_sklearn(tmp_path)[0])
    assert (await upload(client, admin_key, baseline("lead-converter"), archive)).status_code == 201
    for path in ("/api/v1/models/lead-convertor", "/api/v1/models/lead-convertor/versions"):
        missing = assert_problem(
            await client.get(path, headers=auth(admin_key)), 404, "model_not_found"
        )
        assert "did you mean 'lead-converter'?" in str(missing["detail"])
    predicted = await client.post(
        "/api/v1/models/leadconverter/predict",
        json={"inputs": {"f0": 0.1, "f1": 0.2, "f2": 0.3}},
        headers=auth(admin_key),
    )
    assert (
        "did you mean 'lead-converter'?"
        in assert_problem(predicted, 404, "model_not_found")["detail"]
    )  # type: ignore[operator]
    far = await client.get("/api/v1/models/zzz", headers=auth(admin_key))
    assert "did you mean" not in str(assert_problem(far, 404, "model_not_found")["detail"])
