"""The contract, fuzzed: schemathesis against the live service, on every operation, in every
phase (examples, coverage, fuzzing, stateful through the document's links), with every check and a
fixed seed, on a model and a running A/B test made first so the operations that name them reach
their logic. `tests/schemathesis.toml` lists the rules JSON Schema cannot state."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import LiveService, auth
from tests.factories import ab_test, baseline, improved, save_sklearn, tar_gz, unique

CONFIG = Path(__file__).resolve().parent.parent / "schemathesis.toml"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def seed(live: LiveService, workdir: Path) -> tuple[str, str]:
    """A model with two versions, `production` on the first, and a running A/B test between
    them: schemathesis reaches the real logic behind these, not only 404s."""
    name = unique("fuzzed")
    headers = auth(live.admin_key)
    archive = tar_gz(save_sklearn(workdir)[0])
    with httpx.Client(base_url=live.url, headers=headers, timeout=120) as client:
        for metadata in (baseline(name), improved(name)):
            response = client.post(
                "/api/v1/models/register",
                data={"metadata": json.dumps(metadata)},
                files={"artifact": ("model.tar.gz", archive)},
            )
            assert response.status_code == 201, response.text
        client.put(f"/api/v1/models/{name}/aliases/production", json={"version": 1})
        for version in (1, 2):  # loaded now: a first load is not what the response time measures
            row = {"f0": 0.1, "f1": 0.2, "f2": 0.3}
            loaded = client.post(
                f"/api/v1/models/{name}/predict", json={"inputs": row, "version": version}
            )
            assert loaded.status_code == 200, loaded.text
        test = client.post("/api/v1/ab-tests", json=ab_test(name)).json()
        assert client.post(f"/api/v1/ab-tests/{test['id']}/start").status_code == 200
    return name, test["id"]


def test_schemathesis_finds_no_failure_on_any_operation(live: LiveService, tmp_path: Path) -> None:
    name, ab_test_id = seed(live, tmp_path)
    config = tmp_path / "schemathesis.toml"
    operations = [("^/api/v1/models/[{]name[}]", "name", name)]
    operations += [("^/api/v1/ab-tests/[{]ab_test_id[}]", "ab_test_id", ab_test_id)]
    config.write_text(
        CONFIG.read_text()
        + "".join(
            f"\n[[operations]]\ninclude-path-regex = '{regex}'\n"
            f"parameters = {{ {key} = '{value}' }}\n"
            for regex, key, value in operations
        )
    )
    command = [
        str(SCHEMATHESIS),
        "--no-color",
        "--config-file",
        str(config),
        "run",
        f"{live.url}/openapi.json",
        "--checks",
        "all",
        "--seed",
        "20261201",
        "--max-examples",
        "25",
        # One worker: on CPython 3.11, two threads building strategies at once race in `ast.parse`
        # (hypothesis describes lambdas) and fail with "AST constructor recursion depth mismatch".
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--header",
        f"Authorization: Bearer {live.admin_key}",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    summary = run.stdout[run.stdout.find("SUMMARY") :]
    print(summary)  # operations, test cases and failures, in the test's output (-rA or -s)
    assert run.returncode == 0, summary or run.stderr[-4000:]
    tested = re.search(r"Tested: (\d+)", summary)
    assert tested is not None, summary
    assert int(tested.group(1)) == len(live_operations()), "every operation of the document"
    assert "Stateful" in summary
    assert live.process.poll() is None


def live_operations() -> list[tuple[str, str]]:
    document = json.loads((Path(__file__).resolve().parents[2] / "openapi.json").read_text())
    return [(method, path) for path, ops in document["paths"].items() for method in ops]
