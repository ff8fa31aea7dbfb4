"""Clients generated from `openapi.json` work: `openapi-python-client` (the generator most Python
users reach for) builds one with no option set and no warning, a function for every operation,
and that client does what GTM-backend does against the live service: register, read, download,
move aliases, predict, follow lineage and impact, run an A/B test, archive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import ROOT
from tests.conftest import LiveService
from tests.factories import baseline, save_sklearn, tar_gz, unique


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp("generated")
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


def test_the_generated_client_does_what_gtm_backend_does(
    generated: tuple[Path, str], live: LiveService, tmp_path: Path
) -> None:
    """Run in a process of its own, as a user's program would."""
    workdir, _ = generated
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(tar_gz(save_sklearn(tmp_path / "model")[0]))
    name = unique("generated")
    metadata = json.dumps(baseline(name, model_type="lead_scoring"))
    program = f"""
import io, json
from hokusai_generated import AuthenticatedClient
from hokusai_generated.api.ab_tests import (
    assign_unit, create_ab_test, get_results, predict_through_test, record_outcomes,
    start_ab_test, stop_ab_test,
)
from hokusai_generated.api.api_keys import list_api_keys
from hokusai_generated.api.contributors import get_contributor_impact
from hokusai_generated.api.lineage import get_lineage
from hokusai_generated.api.models import (
    archive_version, download_artifact, get_alias_history, get_model, get_version,
    list_aliases, list_versions, register_version, set_alias, unarchive_version,
)
from hokusai_generated.api.predictions import predict
from hokusai_generated.models import (
    AbPredictRequest, AbTestCreate, ApiKeyPage, AliasSet, Assignment, AssignRequest,
    LineageDirection, OutcomesRequest, PredictRequest, Problem, RegisterVersionFilesBody,
)
from hokusai_generated.types import File

client = AuthenticatedClient(base_url={live.url!r}, token={live.admin_key!r}, timeout=120)
page = list_api_keys.sync(client=client)
assert isinstance(page, ApiKeyPage) and page.total >= 1, page

with open({str(archive)!r}, "rb") as handle:
    artifact = File(payload=handle, file_name="model.tar.gz")
    for _ in range(2):
        version = register_version.sync(
            client=client,
            body=RegisterVersionFilesBody(metadata={metadata!r}, artifact=artifact),
        )
        handle.seek(0)
assert version.version == 2, version
assert get_model.sync({name!r}, client=client).latest_version == 2
assert [v.version for v in list_versions.sync({name!r}, client=client).items] == [2, 1]
assert get_version.sync({name!r}, 1, client=client).kind == "baseline"

downloaded = download_artifact.sync({name!r}, 1, client=client)
assert isinstance(downloaded, File), downloaded
assert downloaded.payload.read(2) == b"\\x1f\\x8b", "a gzip archive, as bytes"

moved = set_alias.sync({name!r}, "production", client=client, body=AliasSet(version=1))
assert moved.version == 1, moved
assert list_aliases.sync({name!r}, client=client).to_dict() == {{"production": 1}}
assert [e.to_version for e in get_alias_history.sync({name!r}, "production", client=client)] == [1]

row = {{"f0": 0.1, "f1": 0.2, "f2": 0.3}}
answer = predict.sync({name!r}, client=client, body=PredictRequest.from_dict({{"inputs": row}}))
assert answer.version == 1 and len(answer.predictions) == 1, answer
lineage = get_lineage.sync({name!r}, client=client, direction=LineageDirection.ANCESTORS)
assert sorted(n.version for n in lineage.nodes) == [1, 2], lineage
impact = get_contributor_impact.sync("0x" + "ab" * 20, client=client)
assert impact.contributions == 0, impact

test = create_ab_test.sync(client=client, body=AbTestCreate.from_dict({{
    "name": "generated", "model": {name!r},
    "variants": [{{"name": "control", "version": 1, "weight": 0.5}},
                 {{"name": "treatment", "version": 2, "weight": 0.5}}],
    "metric": {{"name": "converted", "kind": "binary"}},
}}))
assert start_ab_test.sync(test.id, client=client).status == "running"
assigned = assign_unit.sync(test.id, client=client, body=AssignRequest(unit_id="lead-1"))
assert isinstance(assigned, Assignment) and assigned.variant in ("control", "treatment")
routed = predict_through_test.sync(
    test.id, client=client, body=AbPredictRequest.from_dict({{"unit_id": "lead-1", "inputs": row}})
)
assert routed.version == assigned.version, routed
counted = record_outcomes.sync(test.id, client=client, body=OutcomesRequest.from_dict(
    {{"events": [{{"unit_id": "lead-1", "value": 1}}]}}
))
assert counted.accepted == 1, counted
results = get_results.sync(test.id, client=client)
assert {{v.name for v in results.variants}} == {{"control", "treatment"}}, results
assert stop_ab_test.sync(test.id, client=client).status == "stopped"

assert archive_version.sync({name!r}, 2, client=client).archived_at is not None
assert [v.version for v in list_versions.sync({name!r}, client=client).items] == [1]
assert unarchive_version.sync({name!r}, 2, client=client).archived_at is None

missing = get_lineage.sync_detailed(
    "no-such-model", client=client, direction=LineageDirection.ANCESTORS
)
assert missing.status_code == 404 and isinstance(missing.parsed, Problem), missing
assert missing.parsed.code == "model_not_found", missing.parsed
print("ok")
"""
    finished = subprocess.run(
        [sys.executable, "-c", program], cwd=workdir, capture_output=True, text=True, timeout=180
    )
    assert finished.stdout.strip() == "ok", finished.stdout + finished.stderr
