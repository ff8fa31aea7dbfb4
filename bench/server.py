"""The service as the benchmarks run it: a real `hokusai-api serve` (one uvicorn process) on a
free port, with the given settings, stopped with SIGTERM afterwards."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.services_under_test import free_port, wait_until_healthy

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def service(workdir: str, key: str, **settings: str) -> Iterator[str]:
    """Yields the base URL. `settings` are Settings field names (`database_url=...`)."""
    port = free_port()
    env = {
        **os.environ,
        "HOKUSAI_BOOTSTRAP_API_KEY": key,
        "HOKUSAI_PORT": str(port),
        "HOKUSAI_LOG_LEVEL": "WARNING",
        "HOKUSAI_REDIS_PREFIX": f"bench-{port}",
        "HOKUSAI_ATTESTATION_KEY_FILE": f"{workdir}/key.pem",
        **{f"HOKUSAI_{name.upper()}": value for name, value in settings.items()},
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
