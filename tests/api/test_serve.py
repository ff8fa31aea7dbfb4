"""`hokusai-api serve` as users start it: where it listens comes from its flags over the
environment, and a bad value is refused before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.services_under_test import free_port, running

HOKUSAI_API = str(Path(sys.executable).parent / "hokusai-api")


def test_host_and_port_flags_win_over_the_environment(tmp_path: Path) -> None:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HOKUSAI_", "MLFLOW_"))}
    env = {**clean, "HOKUSAI_PORT": str(free_port())}  # the flag wins over this
    with running(
        [HOKUSAI_API, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path / "serve.log",
        f"http://127.0.0.1:{port}",
        timeout_s=120,
        what="hokusai-api serve --port",
        cwd=tmp_path,
    ):
        pass  # healthy on the flag's port, or `running` fails


def test_a_port_out_of_range_is_refused_before_starting(tmp_path: Path) -> None:
    refused = subprocess.run(
        [HOKUSAI_API, "serve", "--port", "70000"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "invalid settings" in refused.stderr
    assert "port" in refused.stderr
