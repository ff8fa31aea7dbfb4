"""Hostile bytes from anyone: bodies nested to crash the parser, numbers past the database's
integers, control characters. Each gets a problem+json 4xx and the process keeps answering."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from app.core.config import Settings
from app.core.security import generate_key
from tests.services_under_test import free_port, service_process

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = json.loads((ROOT / "openapi.json").read_text())
PLACEHOLDERS = {
    "name": "m",
    "version": "1",
    "alias": "production",
    "ab_test_id": str(uuid.UUID(int=1)),
    "api_key_id": str(uuid.UUID(int=1)),
}
BODY_ROUTES = [
    (method.upper(), path.format(**PLACEHOLDERS))
    for path, operations in CONTRACT["paths"].items()
    for method, operation in operations.items()
    if "application/json" in operation.get("requestBody", {}).get("content", {})
]


@pytest.fixture(scope="module")
def live(
    database_url: str, redis_url: str, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """`hokusai-api serve` in its own process: a crash there is a dead process, seen as such."""
    workdir = tmp_path_factory.mktemp("live")
    admin = generate_key()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        host="127.0.0.1",
        port=free_port(),
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=f"live-{uuid.uuid4().hex[:12]}",
        mlflow_tracking_uri=mlflow_uri,
        attestation_key_file=str(workdir / "attestation.pem"),
        bootstrap_api_key=SecretStr(admin),
    )
    with service_process(settings, workdir) as (url, process):
        yield url, admin, process


def deep(depth: int) -> bytes:
    return b'{"name":' + b"[" * depth + b"]" * depth + b"}"


def test_importing_the_app_leaves_the_recursion_limit_alone() -> None:
    code = "import sys; before = sys.getrecursionlimit(); import app.main; import app.cli; "
    code += "print(before, sys.getrecursionlimit())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = out.stdout.split()
    assert after == before


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize("with_key", [False, True])
def test_a_body_nested_100000_deep_is_refused_and_the_process_lives(
    live: tuple[str, str, subprocess.Popen[bytes]], method: str, path: str, with_key: bool
) -> None:
    url, admin, process = live
    headers = {"Content-Type": "application/json"}
    if with_key:
        headers["Authorization"] = f"Bearer {admin}"
    response = httpx.request(method, url + path, content=deep(100_000), headers=headers, timeout=30)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert process.poll() is None
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200
