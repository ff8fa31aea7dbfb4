"""Clients generated from `openapi.json` work: `openapi-python-client` (the generator most Python
users reach for) builds one with no warning and a function for every operation, and that client
talks to the live service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import ROOT
from tests.conftest import LiveService

# A generator's own setting, not a change to the contract: read the gzip archive as bytes.
CONFIG = "content_type_overrides:\n  application/gzip: application/octet-stream\n"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp("generated")
    (workdir / "config.yml").write_text(CONFIG)
    bin_dir = Path(sys.executable).parent
    finished = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(ROOT / "openapi.json"),
            "--meta",
            "none",
            "--output-path",
            str(workdir / "hokusai_generated"),
            "--config",
            str(workdir / "config.yml"),
        ],
        cwd=workdir,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output
    return workdir, output


def test_the_generator_reports_no_warning(generated: tuple[Path, str]) -> None:
    _, output = generated
    assert "warning" not in output.lower(), output
    assert "error" not in output.lower(), output


def test_every_operation_has_a_function(generated: tuple[Path, str]) -> None:
    workdir, _ = generated
    document = json.loads((ROOT / "openapi.json").read_text())
    made = {path.stem for path in (workdir / "hokusai_generated" / "api").rglob("*.py")}
    operations = {
        operation["operationId"]
        for methods in document["paths"].values()
        for operation in methods.values()
    }
    assert operations - made == set()
    schemas = {path.stem for path in (workdir / "hokusai_generated" / "models").glob("*.py")}
    assert not [name for name in schemas - {"__init__"} if "__" in name or name.startswith("app")]


def test_the_generated_client_talks_to_the_service(
    generated: tuple[Path, str], live: LiveService
) -> None:
    """Run in a process of its own, as a user's program would."""
    workdir, _ = generated
    program = f"""
from hokusai_generated import AuthenticatedClient
from hokusai_generated.api.api_keys import list_api_keys
from hokusai_generated.api.lineage import get_lineage
from hokusai_generated.models import ApiKeyPage, LineageDirection, Problem

client = AuthenticatedClient(base_url={live.url!r}, token={live.admin_key!r})
page = list_api_keys.sync(client=client)
assert isinstance(page, ApiKeyPage), page
assert page.total >= 1 and page.items[0].name
missing = get_lineage.sync_detailed(
    "no-such-model", client=client, direction=LineageDirection.ANCESTORS
)
assert missing.status_code == 404 and isinstance(missing.parsed, Problem), missing
assert missing.parsed.code == "model_not_found", missing.parsed
print("ok")
"""
    finished = subprocess.run(
        [sys.executable, "-c", program], cwd=workdir, capture_output=True, text=True, timeout=60
    )
    assert finished.stdout.strip() == "ok", finished.stdout + finished.stderr
