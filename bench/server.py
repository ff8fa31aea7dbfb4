"""What the benchmarks run on: their stores (`stores`: a work folder, a Postgres database and Redis
of the run's own, and MLflow) and the service itself (`service`: a real `hokusai-api serve`, one
uvicorn process, on a free port, stopped with SIGTERM afterwards)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from app.cli import migrate
from app.core.config import Settings
from tests.services_under_test import (
    free_port,
    mlflow_server,
    postgres_server,
    redis_server,
    scratch_database,
    wait_until_healthy,
)

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Stores:
    workdir: str
    database_url: str
    redis_url: str
    mlflow_uri: str

    @property
    def settings(self) -> dict[str, str]:
        """The service's settings that name these stores."""
        return {
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "mlflow_tracking_uri": self.mlflow_uri,
        }


@contextlib.contextmanager
def stores(*, real_mlflow: bool = False, migrated: bool = False) -> Iterator[Stores]:
    """A work folder, a Postgres database and Redis of this run's own, and MLflow: a real server
    on Postgres when the benchmark measures it (`real_mlflow`), else a SQLite store in the work
    folder. `migrated`: the schema is built now, for benchmarks that write rows before the
    service starts (it migrates at start anyway)."""
    with (
        tempfile.TemporaryDirectory() as workdir,
        postgres_server() as admin_url,
        scratch_database(admin_url, "hokusai_bench") as database_url,
        redis_server() as redis_url,
    ):
        if migrated:
            migrate(Settings(database_url=database_url, _env_file=None))  # type: ignore[call-arg]
        if not real_mlflow:
            yield Stores(workdir, database_url, redis_url, f"sqlite:///{workdir}/mlflow.db")
            return
        with (
            scratch_database(admin_url, "hokusai_bench_mlflow") as mlflow_store,
            mlflow_server(mlflow_store, Path(workdir)) as mlflow_uri,
        ):
            yield Stores(workdir, database_url, redis_url, mlflow_uri)


@contextlib.contextmanager
def checkout(commit: str) -> Iterator[Path]:
    """The service as it was at `commit`, in a temporary git worktree, for side-by-side runs."""
    with tempfile.TemporaryDirectory() as parent:
        folder = Path(parent) / commit
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), commit],
            check=True,
            capture_output=True,
        )
        try:
            yield folder
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)],
                check=False,
                capture_output=True,
            )


@contextlib.contextmanager
def service(workdir: str, key: str, source: Path | None = None, **settings: str) -> Iterator[str]:
    """Yields the base URL. `settings` are Settings field names (`database_url=...`). `source`:
    another checkout of the service to run instead of this one (`checkout`), on the same
    environment."""
    port = free_port()
    env = {
        **os.environ,
        "HOKUSAI_BOOTSTRAP_API_KEY": key,
        "HOKUSAI_PORT": str(port),
        "HOKUSAI_LOG_LEVEL": "WARNING",
        "HOKUSAI_REDIS_PREFIX": f"bench-{port}",
        "HOKUSAI_ATTESTATION_KEY_FILE": f"{workdir}/key.pem",
        **{f"HOKUSAI_{name.upper()}": value for name, value in settings.items()},
        **({"PYTHONPATH": str(source)} if source else {}),
    }
    log_path = Path(workdir) / f"server-{port}.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(ROOT / ".venv/bin/hokusai-api"), "serve", "--migrate"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, server, log_path, timeout_s=120)
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        if "redis_url" in settings:
            forget(settings["redis_url"], f"bench-{port}")


def forget(redis_url: str, prefix: str) -> None:
    """Delete what a service stored under its prefix: Redis is shared, and a batch benchmark
    leaves a million cached rows behind (each for the cache's TTL)."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=10_000))
        for start in range(0, len(keys), 10_000):
            client.unlink(*keys[start : start + 10_000])
    finally:
        client.close()
