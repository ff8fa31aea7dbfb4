"""Every error class from a real response of the live service, and the retry policy against a
small real HTTP server that answers as told (503 + Retry-After, 429, 400...), never by patching
the client."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import pytest
from hokusai import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    HokusaiClient,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    UnprocessableEntityError,
)
from hokusai._artifacts import packed
from hokusai.errors import APIStatusError

from app.core.security import generate_key
from tests.api.test_registry_reconciler import mlflow_versions
from tests.conftest import LiveService, live_settings
from tests.factories import DATASET, baseline, save_sklearn, unique
from tests.proxy import Proxy
from tests.services_under_test import free_port, service_process


@pytest.fixture
def client(live: LiveService) -> HokusaiClient:
    return HokusaiClient(live.url, live.admin_key, max_retries=0)


def test_each_status_is_its_error_class_with_the_problem_fields(
    live: LiveService, client: HokusaiClient, tmp_path: Path
) -> None:
    reader_key = client.api_keys.create("reader", ["read"]).key
    archive = tmp_path / "not-a-model.tar.gz"
    archive.write_bytes(b"not an archive")
    cases: list[tuple[type[APIStatusError], Any]] = [
        (AuthenticationError, lambda: HokusaiClient(live.url, "hk_" + "x" * 40).models.get("m")),
        (PermissionDeniedError, lambda: HokusaiClient(live.url, reader_key).models.update("m")),
        (NotFoundError, lambda: client.models.get(unique())),
        (UnprocessableEntityError, lambda: client.aliases.set("m", "production", 0)),
        (
            PayloadTooLargeError,
            lambda: HokusaiClient(live.url, live.admin_key, max_batch_size=5000).predict(
                "m", [{}] * 1001
            ),
        ),
        (
            BadRequestError,
            lambda: client.models.register(
                unique(),
                kind="baseline",
                artifact=archive,
                metrics={"a": 1.0},
                dataset=DATASET,
                model_type="custom",
                benchmark={"metric": "a", "direction": "higher_is_better", "family": "proportion"},
            ),
        ),
    ]
    for kind, call in cases:
        with pytest.raises(kind) as raised:
            call()
        error = raised.value
        assert error.status == error.response.status_code
        assert error.code
        assert error.detail
        assert error.request_id
        assert live.admin_key not in repr(error) + str(error)
    with pytest.raises(UnprocessableEntityError) as invalid:
        client.aliases.set("m", "production", 0)
    assert invalid.value.errors[0]["loc"] == ["body", "version"]


def test_a_taken_token_id_is_a_conflict(client: HokusaiClient, tmp_path: Path) -> None:
    token = unique("T").upper()
    benchmark = {"metric": "a", "direction": "higher_is_better", "family": "proportion"}
    for attempt in range(2):
        call = lambda: client.models.register(  # noqa: E731
            unique(),
            kind="baseline",
            source_uri="runs:/0123456789abcdef0123456789abcdef/model",
            metrics={"a": 1.0},
            dataset=DATASET,
            model_type="custom",
            benchmark=benchmark,
            token_id=token,
        )
        if attempt == 1:
            with pytest.raises((ConflictError, BadRequestError)):
                call()
        else:
            with pytest.raises(BadRequestError):  # the run does not exist in MLflow
                call()


class Scripted(BaseHTTPRequestHandler):
    """Answers each request with the next (status, headers, body) of `script`; records what
    it received."""

    script: ClassVar[list[tuple[int, dict[str, str], dict[str, Any]]]] = []
    received: ClassVar[list[tuple[str, str, dict[str, str]]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        Scripted.received.append((self.command, self.path, dict(self.headers)))
        status, headers, body = (
            Scripted.script.pop(0) if Scripted.script else (200, {}, {"status": "ok"})
        )
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[str]:
    Scripted.script, Scripted.received = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def problem(status: int, code: str) -> dict[str, Any]:
    return {
        "type": f"urn:hokusai:problem:{code}",
        "title": code,
        "status": status,
        "detail": code,
        "code": code,
        "request_id": "srv",
    }


def test_503_is_retried_after_retry_after_with_one_request_id(scripted: str) -> None:
    Scripted.script = [(503, {"Retry-After": "1"}, problem(503, "registry_unavailable"))] * 2
    client = HokusaiClient(scripted, "hk_" + "k" * 40, max_retries=2)
    started = time.monotonic()
    health = client.health()
    elapsed = time.monotonic() - started
    assert health.status == "ok"
    assert len(Scripted.received) == 3
    assert len({headers["X-Request-ID"] for _, _, headers in Scripted.received}) == 1
    assert elapsed >= 2, "Retry-After honoured twice"


def test_a_creating_post_is_retried_with_one_idempotency_key(scripted: str) -> None:
    Scripted.script = [
        (503, {"Retry-After": "0"}, problem(503, "database_unavailable")),
        (
            201,
            {},
            {
                "id": "k",
                "name": "n",
                "scopes": ["read"],
                "key": "hk_x",
                "prefix": "p",
                "created_at": "2026-12-01T00:00:00Z",
                "revoked_at": None,
            },
        ),
    ]
    HokusaiClient(scripted, "hk_" + "k" * 40).api_keys.create("n", ["read"])
    keys = [headers["Idempotency-Key"] for _, _, headers in Scripted.received]
    assert len(keys) == 2
    assert keys[0] == keys[1]


def test_a_post_without_an_idempotency_key_and_any_4xx_are_never_retried(scripted: str) -> None:
    client = HokusaiClient(scripted, "hk_" + "k" * 40, max_retries=3)
    Scripted.script = [(503, {"Retry-After": "0"}, problem(503, "database_unavailable"))]
    with pytest.raises(ServiceUnavailableError) as unavailable:
        client.models.rollback("m")  # a POST that is not creating: repeating it could move twice
    assert len(Scripted.received) == 1
    assert unavailable.value.retry_after == 0
    Scripted.received.clear()
    Scripted.script = [(400, {}, problem(400, "bad_request"))]
    with pytest.raises(BadRequestError):
        client.models.get("m")
    assert len(Scripted.received) == 1


def test_429_and_5xx_give_up_after_max_retries(scripted: str) -> None:
    client = HokusaiClient(scripted, "hk_" + "k" * 40, max_retries=1)
    Scripted.script = [(429, {"Retry-After": "0"}, problem(429, "rate_limited"))] * 2
    with pytest.raises(RateLimitError) as limited:
        client.models.get("m")
    assert limited.value.retry_after == 0
    assert len(Scripted.received) == 2
    Scripted.received.clear()
    Scripted.script = [(500, {}, problem(500, "internal_error"))]
    with pytest.raises(InternalServerError):
        client.models.get("m")
    assert len(Scripted.received) == 1, "a 500 is not retried"


def test_a_closed_port_is_a_connection_error_after_backing_off() -> None:
    port = free_port()
    client = HokusaiClient(f"http://127.0.0.1:{port}", "hk_" + "k" * 40, max_retries=2)
    started = time.monotonic()
    with pytest.raises(APIConnectionError) as raised:
        client.models.get("m")
    assert time.monotonic() - started >= 0.5 * 0.75 + 1.0 * 0.75, "0.5 s then 1 s, with jitter"
    assert raised.value.request_id
    # It says where it tried, and keeps the transport's own error as its cause.
    assert f"http://127.0.0.1:{port}/api/v1/models/m could not be reached" in str(raised.value)
    assert "ConnectError" in str(raised.value)
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


def test_a_duplicate_of_a_running_registration_waits_for_its_response(
    database_url: str, redis_url: str, mlflow_uri: str, tmp_path: Path
) -> None:
    """The first registration with a key is slow (MLflow behind a link of 300 KB/s, a 2 MB
    artifact): a duplicate on the wire gets 409 request_in_progress with Retry-After; the SDK
    sent the same key waits (no retry counted: max_retries=0) and returns the first's version."""
    target = urlsplit(mlflow_uri)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 80)
    admin = generate_key()
    settings = live_settings(
        database_url, redis_url, proxy.url, tmp_path, admin, mlflow_timeout_s=60
    )
    model_dir = save_sklearn(tmp_path / "model")[0]
    (model_dir / "weights.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    filename, archive = packed(model_dir)
    name = unique()
    fields = {key: value for key, value in baseline(name).items() if key != "name"}
    try:
        with service_process(settings, tmp_path) as (url, _), ThreadPoolExecutor(2) as pool:
            proxy.throttle(300 * 1024)
            first = pool.submit(
                HokusaiClient(url, admin, max_retries=0, timeout=120).models.register,
                name,
                artifact=model_dir,
                idempotency_key="same",
                **fields,
            )
            time.sleep(1.0)
            on_the_wire = httpx.post(
                f"{url}/api/v1/models/register",
                data={"metadata": json.dumps({"name": name, **fields})},
                files={"artifact": (filename, archive, "application/octet-stream")},
                headers={"Authorization": f"Bearer {admin}", "Idempotency-Key": "same"},
                timeout=30,
            )
            second = HokusaiClient(url, admin, max_retries=0, timeout=120).models.register(
                name, artifact=model_dir, idempotency_key="same", **fields
            )
            version = first.result(timeout=120)
    finally:
        proxy.cut()
    assert on_the_wire.status_code == 409, on_the_wire.text
    assert on_the_wire.json()["code"] == "request_in_progress"
    assert int(on_the_wire.headers["retry-after"]) >= 1
    assert second == version
    assert version.version == 1
    assert mlflow_versions(mlflow_uri, name) == [1], "one effect"
