"""Resolve the real Postgres, Redis and MLflow the tests talk to.

Order for each: an explicit URL from the environment (HOKUSAI_TEST_DATABASE_URL,
HOKUSAI_TEST_REDIS_URL, HOKUSAI_TEST_MLFLOW_URI), else testcontainers when a Docker engine
answers, else a clear failure. MLflow without a URL is a `mlflow server` subprocess started here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

MISSING = (
    "{what} is needed by the tests: set {variable} (for example {example}), "
    "or run them where a Docker engine answers so testcontainers can start one. "
    "`make test` sets these up by itself."
)


def docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def _server(
    variable: str, what: str, example: str, container: Callable[[], ContextManager[str]]
) -> Iterator[str]:
    url = os.environ.get(variable)
    if url:
        yield url
        return
    if not docker_answers():
        raise RuntimeError(MISSING.format(what=what, variable=variable, example=example))
    with container() as url:
        yield url


@contextlib.contextmanager
def _postgres_container() -> Iterator[str]:
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver="psycopg") as container:
        yield container.get_connection_url()


@contextlib.contextmanager
def _redis_container() -> Iterator[str]:
    from testcontainers.redis import RedisContainer

    with RedisContainer("redis:7-alpine") as container:
        host = container.get_container_host_ip()
        yield f"redis://{host}:{container.get_exposed_port(6379)}/0"


def postgres_server() -> ContextManager[str]:
    """A Postgres admin URL (`postgresql+psycopg://...`) on a server we may create databases on."""
    return _server(
        "HOKUSAI_TEST_DATABASE_URL",
        "PostgreSQL",
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        _postgres_container,
    )


def redis_server() -> ContextManager[str]:
    return _server("HOKUSAI_TEST_REDIS_URL", "Redis", "redis://127.0.0.1:6379/0", _redis_container)


def sync_url(url: str, database: str | None = None) -> str:
    """The libpq form of a SQLAlchemy URL, optionally on another database."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@contextlib.contextmanager
def refused_at_commit(
    database_url: str, table: str, event: str = "INSERT", when: str = "true"
) -> Iterator[None]:
    """While open, a transaction that wrote a row of `table` (by `event`, matching `when` on NEW)
    fails at COMMIT, after every statement succeeded: a deferred constraint trigger."""
    with psycopg.connect(sync_url(database_url), autocommit=True) as connection:
        connection.execute(
            f"""
            CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF {when} THEN RAISE EXCEPTION 'refused at commit'; END IF;
              RETURN NEW;
            END $$;
            CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER {event} ON {table}
              DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit();
            """  # the test's own table and condition, no input
        )
    try:
        yield
    finally:
        with psycopg.connect(sync_url(database_url), autocommit=True) as connection:
            connection.execute(f"DROP TRIGGER refuse_at_commit ON {table}")
            connection.execute("DROP FUNCTION refuse_at_commit()")


def sqlalchemy_url(url: str, database: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql+psycopg", database=database)
        .render_as_string(hide_password=False)
    )


@contextlib.contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A uniquely named database for this run, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(sync_url(admin_url), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sqlalchemy_url(admin_url, name)
    finally:
        with psycopg.connect(sync_url(admin_url), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(backend_store_uri: str, workdir: Path) -> Iterator[str]:
    """A real `mlflow server` subprocess, stopped with SIGTERM at the end."""
    url = os.environ.get("HOKUSAI_TEST_MLFLOW_URI")
    if url:
        yield url
        return
    port = free_port()
    log_path = workdir / "mlflow-server.log"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri,
        "--artifacts-destination",
        str(workdir / "artifacts"),
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    url = f"http://127.0.0.1:{port}"
    with running(command, env, log_path, url, timeout_s=180, what="mlflow server"):
        yield url


def wait_until_healthy(
    url: str,
    process: subprocess.Popen[bytes],
    log_path: Path,
    timeout_s: float,
    what: str = "mlflow server",
    health: str = "/health",
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{log_path.read_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}{health}", timeout=1).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{what} not healthy in {timeout_s} s:\n{log_path.read_text()[-4000:]}")


def settings_env(settings: Any) -> dict[str, str]:
    """`settings` as the HOKUSAI_* environment a service process reads."""
    env: dict[str, str] = {}
    for field in type(settings).model_fields:
        value = getattr(settings, field)
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"HOKUSAI_{field.upper()}"] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
    return env


@contextlib.contextmanager
def service_process(
    settings: Any, workdir: Path, *, cwd: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The service as users run it, `hokusai-api serve`, in a process of its own (a crash there
    is seen as a crash, not as a failed test), stopped with SIGTERM at the end. Its output goes
    to `workdir/service-<port>.log`; `cwd`: the folder it runs in (where it finds `.env`)."""
    log_path = workdir / f"service-{settings.port}.log"
    env = {**os.environ, **settings_env(settings)}
    url = f"http://{settings.host}:{settings.port}"
    command = [sys.executable, "-m", "app.cli", "serve"]
    with running(
        command, env, log_path, url, timeout_s=120, what="hokusai-api serve", cwd=cwd
    ) as process:
        yield url, process


@contextlib.contextmanager
def running(
    command: list[str],
    env: dict[str, str],
    log_path: Path,
    url: str,
    timeout_s: float,
    what: str,
    cwd: Path | None = None,
    health: str = "/health",
) -> Iterator[subprocess.Popen[bytes]]:
    """A server subprocess, its output in `log_path`, healthy at `url` + `health` before it is
    handed out, stopped with SIGTERM (then SIGKILL) at the end."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=cwd
        )
    try:
        wait_until_healthy(url, process, log_path, timeout_s=timeout_s, what=what, health=health)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
