"""The `hokusai` command against the live service, run as users run it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hokusai import HokusaiClient

from tests.conftest import LiveService
from tests.factories import CONTRIBUTOR, DATASET, save_sklearn, unique

HOKUSAI = str(Path(sys.executable).parent / "hokusai")
BENCHMARK = {"metric": "accuracy", "direction": "higher_is_better", "family": "proportion"}


def run(
    live: LiveService, tmp_path: Path, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HOKUSAI_BASE_URL": live.url + "/api",
        "HOKUSAI_API_KEY": key or live.admin_key,
        "HOKUSAI_CONFIG_FILE": str(tmp_path / "config"),
    }
    return subprocess.run([HOKUSAI, *args], capture_output=True, text=True, env=env, timeout=180)


def register_baseline(
    live: LiveService, tmp_path: Path, name: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """`hokusai models register NAME --kind baseline ...` with a saved scikit-learn model."""
    return run(
        live,
        tmp_path,
        "models",
        "register",
        name,
        "--kind",
        "baseline",
        "--artifact",
        str(save_sklearn(tmp_path / name)[0]),
        "--model-type",
        "classification",
        "--metrics",
        '{"accuracy": 0.8}',
        "--dataset",
        json.dumps(DATASET),
        "--benchmark",
        json.dumps(BENCHMARK),
        *extra,
    )


def register_improved(
    live: LiveService, tmp_path: Path, name: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """`hokusai models register NAME --kind improved ...` with another saved model, claiming
    accuracy 0.9, one contributor taking the whole share."""
    return run(
        live,
        tmp_path,
        "models",
        "register",
        name,
        "--kind",
        "improved",
        "--artifact",
        str(save_sklearn(tmp_path / "v2", "classifier")[0]),
        "--metrics",
        '{"accuracy": 0.9}',
        "--dataset",
        json.dumps(DATASET),
        "--contributors",
        json.dumps([{"address": CONTRIBUTOR, "weight": 1}]),
        *extra,
    )


def test_register_list_predict_lineage_from_the_command_line(
    live: LiveService, tmp_path: Path
) -> None:
    name = unique("cli")
    registered = register_baseline(live, tmp_path, name, "--json")
    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["version"] == 1
    listed = run(live, tmp_path, "models", "list", "--json")
    assert name in [m["name"] for m in json.loads(listed.stdout)]
    table = run(live, tmp_path, "models", "list").stdout.splitlines()
    assert table[0] == "NAME\tLATEST\tTYPE\tALIASES"
    assert any(line.startswith(f"{name}\tv1\tclassification") for line in table)
    improved = register_improved(live, tmp_path, name, "--parent-version", "1", "--json")
    assert improved.returncode == 0, improved.stderr
    assert json.loads(improved.stdout)["parent_version"] == 1, improved.stdout[:600]
    predicted = run(
        live, tmp_path, "predict", name, "--inputs", '{"f0": 0.2, "f1": 0.9, "f2": 0.1}'
    )
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["version"] == 2, "no production alias: the latest"
    mermaid = run(live, tmp_path, "lineage", name, "--format", "mermaid")
    assert mermaid.returncode == 0
    assert mermaid.stdout.strip()
    assert not mermaid.stdout.lstrip().startswith("{"), "the text itself, not JSON"


def test_errors_go_to_stderr_with_code_and_request_id(live: LiveService, tmp_path: Path) -> None:
    missing = run(live, tmp_path, "ab-tests", "results", "00000000-0000-0000-0000-000000000001")
    assert missing.returncode == 1
    assert "ab_test_not_found (404)" in missing.stderr
    assert "[request " in missing.stderr
    assert missing.stdout == ""
    refused = run(live, tmp_path, "models", "list", key="hk_" + "x" * 40)
    assert refused.returncode == 1
    assert "unauthenticated (401)" in refused.stderr
    assert "x" * 40 not in refused.stderr


def test_login_writes_a_private_config_the_client_then_uses(
    live: LiveService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    logged = subprocess.run(
        [HOKUSAI, "login", "--base-url", live.url + "/api/v1", "--api-key", live.admin_key],
        capture_output=True,
        text=True,
        env={**os.environ, "HOKUSAI_CONFIG_FILE": str(config)},
    )
    assert logged.returncode == 0, logged.stderr
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert live.admin_key not in logged.stdout
    assert f"logged in to {live.url} as key 'bootstrap' (admin" in logged.stdout
    wrong = subprocess.run(
        [HOKUSAI, "login", "--base-url", live.url, "--api-key", "hk_" + "w" * 40],
        capture_output=True,
        text=True,
        env={**os.environ, "HOKUSAI_CONFIG_FILE": str(tmp_path / "other")},
    )
    assert wrong.returncode == 1
    assert "unauthenticated (401)" in wrong.stderr
    assert not (tmp_path / "other").exists(), "a key that does not work is not saved"
    for variable in (
        "HOKUSAI_API_KEY",
        "HOKUSAI_BASE_URL",
        "HOKUSAI_API_URL",
        "HOKUSAI_API_ENDPOINT",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOKUSAI_CONFIG_FILE", str(config))
    client = HokusaiClient()
    assert client.base_url == live.url
    assert client.health().status == "ok"


def test_benchmarks_from_the_command_line(live: LiveService, tmp_path: Path) -> None:
    """Upload, list, show, download (the `benchmark` scope) and retire a held benchmark; a
    `write` key sees the summary and is refused the file."""
    import pandas as pd
    from hokusai import dataset_hash

    frame = pd.DataFrame(
        {"f0": [0.1 * i for i in range(40)], "converted": [i % 2 for i in range(40)]}
    )
    csv = tmp_path / "leads.csv"
    frame.to_csv(csv, index=False)
    held = run(live, tmp_path, "benchmarks", "upload", str(csv), "--label-column", "converted")
    assert held.returncode == 0, held.stderr
    digest = dataset_hash(csv)
    assert held.stdout.split("\t")[:2] == [digest, "40 rows"]
    listed = run(live, tmp_path, "benchmarks", "list")
    assert listed.stdout.splitlines()[0] == "HASH\tROWS\tLABEL\tRETIRED"
    assert f"{digest}\t40\tconverted\tno" in listed.stdout
    with HokusaiClient(base_url=live.url, api_key=live.admin_key) as client:
        writer = client.api_keys.create("cli-contributor", ["write"]).key
    shown = run(live, tmp_path, "benchmarks", "show", digest, key=writer)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["label_column"] == "converted"
    refused = run(live, tmp_path, "benchmarks", "download", digest, "-o", "x.csv", key=writer)
    assert refused.returncode == 1
    assert "forbidden" in refused.stderr or "403" in refused.stderr
    copy = tmp_path / "copy.csv"
    fetched = run(live, tmp_path, "benchmarks", "download", digest, "-o", str(copy))
    assert fetched.returncode == 0, fetched.stderr
    assert copy.read_bytes() == csv.read_bytes()
    retired = run(live, tmp_path, "benchmarks", "retire", digest)
    assert retired.returncode == 0, retired.stderr
    assert f"{digest}\t40\tconverted\tyes" in run(live, tmp_path, "benchmarks", "list").stdout


def test_version_global_json_inputs_from_files_and_a_closed_pipe(
    live: LiveService, tmp_path: Path
) -> None:
    from hokusai import __version__

    version = run(live, tmp_path, "--version")
    assert version.stdout.strip() == f"hokusai {__version__}"
    before = run(live, tmp_path, "--json", "models", "list")
    after = run(live, tmp_path, "models", "list", "--json")
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout) == json.loads(after.stdout)

    name = unique("cli-inputs")
    registered = register_baseline(live, tmp_path, name)
    assert registered.returncode == 0, registered.stderr
    rows = [{"f0": i / 1000, "f1": 0.5, "f2": 0.25} for i in range(1000)]
    batch = tmp_path / "rows.json"
    batch.write_text(json.dumps(rows))
    from_file = run(live, tmp_path, "predict", name, "--inputs", f"@{batch}")
    assert from_file.returncode == 0, from_file.stderr
    assert len(json.loads(from_file.stdout)["predictions"]) == 1000
    env = {
        **os.environ,
        "HOKUSAI_BASE_URL": live.url,
        "HOKUSAI_API_KEY": live.admin_key,
        "HOKUSAI_CONFIG_FILE": str(tmp_path / "config"),
    }
    from_stdin = subprocess.run(
        [HOKUSAI, "predict", name, "--inputs", "-"],
        input=json.dumps(rows[:3]),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert len(json.loads(from_stdin.stdout)["predictions"]) == 3
    broken = run(live, tmp_path, "predict", name, "--inputs", "{not json")
    assert broken.returncode == 2
    assert "the argument is not JSON: Expecting property name" in broken.stderr
    assert "Traceback" not in broken.stderr
    missing = run(live, tmp_path, "predict", name, "--inputs", "@nowhere.json")
    assert "cannot read nowhere.json" in missing.stderr

    # A reader that leaves before the output is written (`| head`, here `| true`, which reads
    # nothing): no BrokenPipeError traceback.
    piped = subprocess.run(
        f"{HOKUSAI} predict {name} --inputs @{batch} | true",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "BrokenPipeError" not in piped.stderr
    assert "Traceback" not in piped.stderr
    assert "Exception ignored" not in piped.stderr


def test_versions_aliases_archives_ab_tests_attestations_and_contributors(
    live: LiveService, tmp_path: Path
) -> None:
    """Every command a user reaches for after registering, through the entry point."""
    name = unique("cli-all")
    contributor = CONTRIBUTOR

    def ok(*args: str) -> str:
        done = run(live, tmp_path, *args)
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    assert register_baseline(live, tmp_path, name).returncode == 0
    improved = register_improved(live, tmp_path, name, "--json")
    assert improved.returncode == 0, improved.stderr
    attestation_id = json.loads(improved.stdout)["attestation_id"]

    table = ok("versions", "list", name).splitlines()
    assert table[0] == "VERSION\tKIND\tPARENT\tMETRIC\tDECISION"
    assert table[1].startswith("v2\timproved\tv1\taccuracy=0.9\taccepted")
    assert json.loads(ok("versions", "show", name, "1", "--json"))["kind"] == "baseline"
    assert "bytes" in ok("versions", "download", name, "1", "-o", str(tmp_path))
    assert (tmp_path / f"{name}-1.tar.gz").stat().st_size > 0

    ok("aliases", "set", name, "production", "1", "--reason", "first")
    assert ok("aliases", "set", name, "production", "2").strip() == f"{name} production -> v2"
    assert ok("aliases", "list", name).strip() == "production\tv2"
    history = ok("aliases", "history", name, "production").splitlines()
    assert [line.split("\t")[1:3] for line in history[1:]] == [["-", "v1"], ["v1", "v2"]]
    assert ok("aliases", "rollback", name).strip() == f"{name} production -> v1"

    assert "(archived)" in ok("versions", "archive", name, "2")
    assert [line.split("\t")[0] for line in ok("versions", "list", name).splitlines()[1:]] == ["v1"]
    every = ok("versions", "list", name, "--include-archived").splitlines()[1:]
    assert [line.split("\t")[0] for line in every] == ["v2", "v1"]
    assert "(archived)" not in ok("versions", "unarchive", name, "2")
    assert "archived" in ok("models", "archive", name)
    assert name not in ok("models", "list")
    assert name in ok("models", "list", "--include-archived")
    refused = run(live, tmp_path, "predict", name, "--inputs", '{"f0": 0, "f1": 0, "f2": 0}')
    assert refused.returncode == 1
    assert "model_archived (409)" in refused.stderr
    assert "archived" not in ok("models", "unarchive", name)
    assert ok("models", "show", name).startswith(f"{name}: classification, latest v2")

    created = json.loads(
        ok(
            "ab-tests",
            "create",
            "--model",
            name,
            "--name",
            "cli-test",
            "--variants",
            json.dumps(
                [
                    {"name": "control", "alias": "production", "weight": 0.5},
                    {"name": "treatment", "version": 2, "weight": 0.5},
                ]
            ),
            "--metric",
            '{"name": "converted", "kind": "binary"}',
            "--json",
        )
    )
    test_id = created["id"]
    assert "\trunning\t" in ok("ab-tests", "start", test_id)
    assert test_id in ok("ab-tests", "list", "--model", name)
    assert "verdict" in ok("ab-tests", "results", test_id)
    promoted = json.loads(ok("ab-tests", "promote", test_id, "treatment", "--force", "--json"))
    assert promoted["status"] == "stopped"
    assert ok("aliases", "list", name).strip() == "production\tv2"

    assert attestation_id in ok("attestations", "list", name)
    shown = json.loads(ok("attestations", "show", attestation_id))
    assert shown["id"] == attestation_id
    assert ok("attestations", "verify", attestation_id).strip() == "valid"
    assert ok("attestations", "verify", "--chain", name).strip() == "valid"
    forged = shown["envelope"]
    forged["payload"] = forged["payload"][:-4] + "AAA="
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    rejected = run(live, tmp_path, "attestations", "verify", f"@{tmp_path / 'forged.json'}")
    assert rejected.returncode == 1
    assert rejected.stdout.startswith("INVALID")

    impact = ok("contributors", "impact", contributor)
    assert impact.startswith(f"{contributor}: ")
    assert "accepted; measured gain" in impact
    rows = ok("contributors", "contributions", contributor).splitlines()
    assert rows[0] == "MODEL\tVERSION\tSHARE\tGAIN\tACCEPTED\tBASIS"
    assert any(line.startswith(f"{name}\tv2\t100.00%") for line in rows[1:])
