"""GTM-backend, exactly as it calls the service today: its base URL ends in `/api`, it posts
`{"inputs": {...}}` to `{base}/v1/models/{model}/predict` with a Bearer key holding `read` and
`predict`, sends its own `X-Request-ID`, and names models by its numeric ids (`21`). Every answer
it relies on is checked here: the prediction, the cache header, JSON errors that echo its request
id, and a fast 503 with Retry-After when the model cannot be loaded."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from app.core.config import Settings
from tests.api.test_errors import assert_problem
from tests.conftest import create_key, serve
from tests.factories import register_baseline, save_sklearn, tar_gz
from tests.services_under_test import free_port

MODEL = "21"  # GTM-backend's numeric model id
LEAD = {"f0": 0.61, "f1": 0.72, "f2": 0.05}


def gtm_backend(app_client: httpx.AsyncClient, key: str | None) -> httpx.AsyncClient:
    """An HTTP client configured as GTM-backend's: base URL `.../api`, Bearer key, JSON."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.AsyncClient(
        transport=app_client._transport, base_url="http://hokusai.test/api", headers=headers
    )


async def score(
    gtm: httpx.AsyncClient, model: str, request_id: str, **body: object
) -> httpx.Response:
    return await gtm.post(
        f"/v1/models/{model}/predict",
        json={"inputs": LEAD, **body},
        headers={"X-Request-ID": request_id},
        timeout=120,
    )


async def deploy_lead_model(client: httpx.AsyncClient, admin_key: str, tmp_path: Path) -> str:
    """Model `21` registered, and GTM-backend's key (`read`, `predict`)."""
    archive = tar_gz(save_sklearn(tmp_path)[0])
    await register_baseline(client, admin_key, archive, MODEL, model_type="lead_scoring")
    created = await create_key(client, admin_key, "read", "predict", name="gtm-backend")
    return str(created["key"])


async def test_gtm_backend_scores_leads_as_it_does_today(
    make_settings: Callable[..., Settings], admin_key: str, tmp_path: Path
) -> None:
    async with serve(make_settings()) as client:
        gtm_key = await deploy_lead_model(client, admin_key, tmp_path)
        reader = (await create_key(client, admin_key, "read", name="dashboard"))["key"]
        async with gtm_backend(client, gtm_key) as gtm:
            first = await score(gtm, MODEL, "gtm-7f3a-0001")
            second = await score(gtm, MODEL, "gtm-7f3a-0002")
            unknown = await score(gtm, "9999", "gtm-7f3a-0003")
            malformed = await gtm.post(
                f"/v1/models/{MODEL}/predict",
                json={"inputs": {"f0": 0.1, "f1": "many"}},
                headers={"X-Request-ID": "gtm-7f3a-0004"},
            )
            not_json = await gtm.post(
                f"/v1/models/{MODEL}/predict",
                content=b"{inputs:",
                headers={"X-Request-ID": "gtm-7f3a-0005"},
            )
        async with gtm_backend(client, None) as anonymous:
            no_key = await score(anonymous, MODEL, "gtm-7f3a-0006")
        async with gtm_backend(client, "hk_" + "x" * 40) as wrong:
            bad_key = await score(wrong, MODEL, "gtm-7f3a-0007")
        async with gtm_backend(client, reader) as read_only:
            forbidden = await score(read_only, MODEL, "gtm-7f3a-0008")

    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-request-id"] == "gtm-7f3a-0001"
    assert first.headers["x-cache"] == "MISS"
    body = first.json()
    assert body["model"] == MODEL
    assert body["version"] == 1
    assert isinstance(body["predictions"], list)
    assert len(body["predictions"]) == 1
    assert body["predictions"][0] in (0, 1)
    assert body["cache"] == {"hits": 0, "misses": 1}
    assert body["ab_test"] is None
    assert second.headers["x-cache"] == "HIT"
    assert second.json()["predictions"] == body["predictions"]

    for response, status, code, request_id in (
        (unknown, 404, "model_not_found", "gtm-7f3a-0003"),
        (malformed, 422, "validation_failed", "gtm-7f3a-0004"),
        (not_json, 422, "validation_failed", "gtm-7f3a-0005"),
        (no_key, 401, "unauthenticated", "gtm-7f3a-0006"),
        (bad_key, 401, "unauthenticated", "gtm-7f3a-0007"),
        (forbidden, 403, "forbidden", "gtm-7f3a-0008"),
    ):
        problem = assert_problem(response, status, code)
        assert problem["request_id"] == request_id
    assert "www-authenticate" in no_key.headers
    assert malformed.json()["errors"][0]["loc"][-1] in ("f1", "f2")  # names the field
    assert not_json.json()["errors"][0]["type"] == "json_invalid"


async def test_gtm_backend_gets_a_fast_503_with_retry_after_when_the_model_cannot_load(
    make_settings: Callable[..., Settings], admin_key: str, tmp_path: Path
) -> None:
    """The model was never loaded by this replica and MLflow is gone (a closed port)."""
    async with serve(make_settings()) as client:
        gtm_key = await deploy_lead_model(client, admin_key, tmp_path)
    closed = make_settings(mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}")
    async with serve(closed) as client, gtm_backend(client, gtm_key) as gtm:
        started = time.monotonic()
        response = await score(gtm, MODEL, "gtm-503-0001")
        elapsed = time.monotonic() - started
    problem = assert_problem(response, 503, "model_unavailable")
    assert problem["request_id"] == "gtm-503-0001"
    assert int(response.headers["retry-after"]) >= 1
    assert elapsed < 10, f"GTM-backend waited {elapsed:.1f} s for a 503"
