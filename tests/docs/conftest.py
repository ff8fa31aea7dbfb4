"""What users are shown runs as users run it: the SDK's wheel with its `[mlflow,verify]` extras
and the examples' libraries, alone in a fresh virtual environment (the workspace's versions, so
nothing new is resolved), against the service in a process of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.cli import ROOT
from app.core.security import generate_key
from tests.conftest import live_settings
from tests.services_under_test import service_process

UV = [found] if (found := shutil.which("uv")) else ["python3", "-m", "uv"]
EXTRAS = ["scikit-learn", "pandas", "cryptography", "eth-account"]
# A test-only secp256k1 key, so accepted DeltaOnes carry EIP-712 signatures the examples check.
EIP712_KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


def uv(*args: str) -> None:
    subprocess.run([*UV, *args], check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="session")
def user_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the SDK's wheel (built now) and what the examples import."""
    work = tmp_path_factory.mktemp("user-venv")
    uv("build", str(ROOT / "sdk"), "--wheel", "--out-dir", str(work / "dist"))
    [wheel] = (work / "dist").glob("hokusai_ml_platform-*.whl")
    frozen = subprocess.run(
        [*UV, "pip", "freeze", "--python", sys.executable],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pins = [line for line in frozen.splitlines() if "==" in line and "hokusai" not in line]
    (work / "constraints.txt").write_text("\n".join(pins) + "\n")
    venv = work / "venv"
    uv("venv", "--quiet", "--python", sys.executable, str(venv))
    python = venv / "bin" / "python"
    # Compiled as pip does it, so each example does not compile what it imports again.
    uv(
        "pip",
        "install",
        "--quiet",
        "--compile-bytecode",
        "--python",
        str(python),
        "-c",
        str(work / "constraints.txt"),
        f"{wheel}[mlflow,verify]",
        *EXTRAS,
    )
    return python


@dataclass(frozen=True)
class UserService:
    url: str
    admin_key: str
    workdir: Path

    def run(self, python: Path, *args: str, base_url: str | None = None) -> str:
        """`python args...` as a user runs it, with the service's address and a key in the
        environment; returns what it printed, fails with its output when it exits non-zero."""
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HOKUSAI_")},
            "HOKUSAI_BASE_URL": base_url or self.url,
            "HOKUSAI_API_KEY": self.admin_key,
            "MLFLOW_TRACKING_URI": "",  # examples never talk to MLflow themselves
        }
        finished = subprocess.run(
            [str(python), *args],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = finished.stdout + finished.stderr
        assert finished.returncode == 0, output[-6000:]
        return finished.stdout


@pytest.fixture(scope="module")
def user_service(
    database_url: str, redis_url: str, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UserService]:
    workdir = tmp_path_factory.mktemp("user-service")
    admin = generate_key()
    settings = live_settings(
        database_url,
        redis_url,
        mlflow_uri,
        workdir,
        admin,
        eip712_signing_key=SecretStr(EIP712_KEY),
    )
    runs = workdir / "runs"
    runs.mkdir()
    with service_process(settings, workdir) as (url, _):
        yield UserService(url, admin, runs)
