from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from pydantic import SecretStr

from app.cli import migrate
from app.core.config import Settings
from app.core.security import generate_key
from app.db.models import Base
from app.main import create_app
from tests.services_under_test import (
    free_port,
    mlflow_server,
    postgres_server,
    redis_server,
    scratch_database,
    service_process,
    sync_url,
)

TABLES = tuple(table.name for table in Base.metadata.sorted_tables)


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str) -> Iterator[str]:
    """This run's own database, built by the migrations."""
    with scratch_database(postgres_admin_url, "hokusai_test") as url:
        migrate(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def mlflow_uri(postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow server with a Postgres backend store (SQLite would serialise writers)."""
    with (
        scratch_database(postgres_admin_url, "hokusai_mlflow") as backend,
        mlflow_server(backend, tmp_path_factory.mktemp("mlflow")) as url,
    ):
        yield url


@pytest.fixture
def clean_database(database_url: str) -> Iterator[str]:
    """Tests never share rows: every table is emptied before and after each test (before too: a
    module's own service in its own process, `live`, writes rows no test of its cleans, and the
    workers take the modules in any order)."""
    empty(database_url)
    yield database_url
    empty(database_url)


def empty(database_url: str) -> None:
    with psycopg.connect(sync_url(database_url), autocommit=True) as connection:
        connection.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")


@pytest.fixture
def admin_key() -> str:
    return generate_key()


@pytest.fixture
def make_settings(
    clean_database: str, redis_url: str, mlflow_uri: str, admin_key: str, tmp_path: Path
) -> Callable[..., Settings]:
    prefix = f"test-{uuid.uuid4().hex[:12]}"

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": clean_database,
            "redis_url": redis_url,
            "redis_prefix": prefix,
            "mlflow_tracking_uri": mlflow_uri,
            "mlflow_artifact_root": str(tmp_path / "mlartifacts"),
            "attestation_key_file": str(tmp_path / "attestation-ed25519.pem"),
            "bootstrap_api_key": SecretStr(admin_key),
            "webhook_allow_private_networks": True,  # the tests' receivers listen on loopback
            # MLflow is shared by the whole run, Postgres cleaned per test: the reconciler runs
            # only where a test asks for it (tests/api/test_registry_reconciler.py).
            "registry_reconcile_interval_s": 0,
            **overrides,
        }
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@contextlib.asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, called in-process over ASGI."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://hokusai.test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings) as client:
        yield client


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create_key(
    client: httpx.AsyncClient, admin_key: str, *scopes: str, name: str = "test"
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/api-keys", json={"name": name, "scopes": list(scopes)}, headers=auth(admin_key)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@dataclass
class LiveService:
    """`hokusai-api serve` in a process of its own, as users run it."""

    url: str
    admin_key: str
    process: subprocess.Popen[bytes]


def live_settings(
    database_url: str,
    redis_url: str,
    mlflow_uri: str,
    workdir: Path,
    admin_key: str,
    **overrides: Any,
) -> Settings:
    """Settings of a service run in its own process on this run's stores, with `admin_key`
    registered, and no per-key or per-address limits (such tests send thousands of requests)."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        host="127.0.0.1",
        port=free_port(),
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=f"live-{uuid.uuid4().hex[:12]}",
        mlflow_tracking_uri=mlflow_uri,
        attestation_key_file=str(workdir / "attestation.pem"),
        bootstrap_api_key=SecretStr(admin_key),
        **{
            "log_level": "WARNING",
            "rate_limit_per_minute": 0,
            "auth_failures_per_minute": 0,
            "registry_reconcile_interval_s": 0,
            **overrides,
        },
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (tests/browser.py). Module-scoped, so
    the session's fixtures (which run `asyncio.run`) are set up before Playwright's loop runs."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, FLAGS

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def live(
    database_url: str, redis_url: str, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    """The service in its own process (a crash there is a dead process, seen as such), on this
    run's database. No per-key or per-address limits: the tests that use it send thousands of
    requests, some with bad keys on purpose."""
    workdir = tmp_path_factory.mktemp("live")
    admin = generate_key()
    settings = live_settings(database_url, redis_url, mlflow_uri, workdir, admin)
    with service_process(settings, workdir) as (url, process):
        yield LiveService(url, admin, process)


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A scikit-learn classifier's model folder as a .tar.gz: what most tests upload."""
    from tests.factories import save_sklearn, tar_gz

    return tar_gz(save_sklearn(tmp_path_factory.mktemp("models"))[0])


EIP712_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


@pytest.fixture
async def signing_client(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """A service that also signs accepted improvements as EIP-712 (with EIP712_KEY)."""
    settings = make_settings(
        eip712_signing_key=EIP712_KEY,
        eip712_chain_id=8453,
        eip712_verifying_contract="0x00000000000000000000000000000000000000A1",
        attestation_key_file=str(tmp_path / "ed25519.pem"),
        deltaone_cooldown_s=0,
    )
    async with serve(settings) as client:
        yield client
