"""`hokusai verify --recompute`: whoever holds the benchmark and both models re-runs what the
service measured, offline, and learns whether each signed number and the decision hold."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import hokusai
import httpx
import pytest
import rfc8785
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from app.core.config import Settings
from tests.api.test_measured import Held, saved
from tests.conftest import auth


@pytest.fixture
async def measured(client: httpx.AsyncClient, admin_key: str, tmp_path: Path) -> dict[str, Any]:
    """An accepted measured improvement: the exported bundle and the files it was measured on."""
    held = Held(client, admin_key, tmp_path)
    await held.start()
    better = saved(held.tmp, "v2", held.train)
    response = await held.improve(better, claimed=0.7)
    assert response.status_code == 201, response.text
    assert response.json()["deltaone"]["reason"] == "accepted"
    exported = await held.client.get(
        f"/api/v1/models/{held.name}/attestations/export", headers=auth(held.admin_key)
    )
    assert exported.status_code == 200, exported.text
    benchmark = held.tmp / "bench.csv"
    benchmark.write_bytes(held.test.to_csv(index=False).encode())
    return {
        "bundle": exported.json(),
        "recompute": hokusai.Recompute(benchmark, held.baseline_dir, better),
        "held": held,
    }


def recomputed(report: hokusai.VerifyReport) -> dict[str, bool]:
    return {c.check: c.ok for c in report.checks if c.check.startswith("recompute")}


async def test_every_signed_number_and_the_decision_recompute_offline(
    measured: dict[str, Any],
) -> None:
    report = hokusai.verify(measured["bundle"], recompute=measured["recompute"])
    assert report.valid, report.failures
    checks = recomputed(report)
    assert set(checks) >= {
        "recompute.parent",
        "recompute.benchmark",
        "recompute.metric",
        "recompute.rows",
        "recompute.parent_value",
        "recompute.candidate_value",
        "recompute.gain",
        "recompute.ci_low",
        "recompute.ci_high",
        "recompute.bootstrap",
        "recompute.predictions_sha256",
        "recompute.decision",
    }
    assert all(checks.values())


async def test_other_files_than_the_ones_measured_are_named(measured: dict[str, Any]) -> None:
    held: Held = measured["held"]
    recompute: hokusai.Recompute = measured["recompute"]

    changed_labels = held.test.copy()
    changed_labels.loc[0, "label"] = 1 - changed_labels.loc[0, "label"]
    other_benchmark = held.tmp / "other.csv"
    other_benchmark.write_bytes(changed_labels.to_csv(index=False).encode())
    report = hokusai.verify(
        measured["bundle"],
        recompute=hokusai.Recompute(other_benchmark, recompute.parent, recompute.candidate),
    )
    assert [f.check for f in report.failures] == ["recompute.benchmark"]

    other_parent = saved(held.tmp, "stranger", held.train.iloc[:40])
    report = hokusai.verify(
        measured["bundle"],
        recompute=hokusai.Recompute(recompute.benchmark, other_parent, recompute.candidate),
    )
    assert [f.check for f in report.failures] == ["recompute.parent"]

    report = hokusai.verify(
        measured["bundle"],
        recompute=hokusai.Recompute(recompute.benchmark, recompute.parent, other_parent),
    )
    assert [f.check for f in report.failures] == ["recompute.candidate"]
    assert "no attestation in the bundle is about the candidate" in report.failures[0].detail


async def test_numbers_signed_but_not_measured_are_caught_by_recomputing(
    measured: dict[str, Any], settings: Settings
) -> None:
    """A statement with an inflated gain and a wrong decision, validly signed (a stolen key or
    a service bug): the signature checks pass, the recomputation names each false number."""
    bundle = copy.deepcopy(measured["bundle"])
    [item] = bundle["attestations"]
    statement = item["statement"]
    decision = statement["predicate"]["decision"]
    decision["measurement"]["gain"] = decision["measurement"]["gain"] + 5
    decision["measurement"]["ci_low"] = 0.5
    decision["measurement"]["parent_value"] = 0.5
    key = load_pem_private_key(Path(settings.attestation_key_file).read_bytes(), password=None)
    signed(bundle, key)

    assert hokusai.verify(bundle).valid, "signed: the offline checks alone cannot tell"
    report = hokusai.verify(bundle, recompute=measured["recompute"])
    assert {f.check for f in report.failures} == {
        "recompute.gain",
        "recompute.ci_low",
        "recompute.parent_value",
    }

    # The numbers left as measured, the decision turned: the decision check names it.
    bundle = copy.deepcopy(measured["bundle"])
    decision = bundle["attestations"][0]["statement"]["predicate"]["decision"]
    decision["reason"], decision["accepted"] = "delta_below_threshold", False
    signed(bundle, key)
    report = hokusai.verify(bundle, recompute=measured["recompute"])
    assert [f.check for f in report.failures] == ["recompute.decision"]
    assert "'delta_below_threshold', the recomputed numbers give 'accepted'" in (
        report.failures[0].detail
    )


def signed(bundle: dict[str, Any], key: Any) -> None:
    """Re-sign the bundle's one attestation as it now reads."""
    [item] = bundle["attestations"]
    payload = bytes(rfc8785.dumps(item["statement"]))
    item["id"] = "sha256:" + hashlib.sha256(payload).hexdigest()
    kind = item["envelope"]["payloadType"].encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
    item["envelope"]["payload"] = base64.b64encode(payload).decode()
    item["envelope"]["signatures"][0]["sig"] = base64.b64encode(key.sign(pae)).decode()


async def test_the_command_line_recomputes_and_exits_0_only_when_it_holds(
    measured: dict[str, Any], tmp_path: Path
) -> None:
    recompute: hokusai.Recompute = measured["recompute"]
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(measured["bundle"]))
    command = [sys.executable, "-m", "hokusai.cli", "verify", str(bundle), "--recompute"]
    files = ["--benchmark", str(recompute.benchmark), "--parent", str(recompute.parent)]
    passed = subprocess.run(
        [*command, *files, "--candidate", str(recompute.candidate), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert json.loads(passed.stdout)["valid"] is True
    wrong = subprocess.run(
        [*command, *files, "--candidate", str(recompute.parent)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert wrong.returncode == 1
    assert "FAILED" in wrong.stdout
    assert "recompute.candidate" in wrong.stdout
    incomplete = subprocess.run(command, capture_output=True, text=True, check=False)
    assert incomplete.returncode != 0
    assert "--recompute needs --benchmark, --parent, --candidate" in incomplete.stderr


async def test_a_signed_statement_naming_what_is_not_there_is_a_failed_check(
    measured: dict[str, Any], settings: Settings
) -> None:
    """A label column the benchmark lacks, a metric nobody measures: named failures, never an
    exception out of verify."""
    key = load_pem_private_key(Path(settings.attestation_key_file).read_bytes(), password=None)
    for field, value, check in (
        ("label_column", "nope", "recompute.label_column"),
        ("metric", "made_up", "recompute.metric"),
    ):
        bundle = copy.deepcopy(measured["bundle"])
        predicate = bundle["attestations"][0]["statement"]["predicate"]
        if field == "metric":
            predicate["benchmark"]["metric"] = value
        else:
            predicate["decision"]["measurement"][field] = value
        signed(bundle, key)
        report = hokusai.verify(bundle, recompute=measured["recompute"])
        assert [f.check for f in report.failures] == [check]
