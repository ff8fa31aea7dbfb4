"""`hokusai verify`, offline: a chain the service exported verifies with nothing but its bundle
(and, as a trust root, the keys fetched separately); each kind of tampering is named."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import hokusai
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import auth
from tests.factories import Model


@pytest.fixture
async def bundle(client: httpx.AsyncClient, admin_key: str, archive: bytes) -> dict[str, Any]:
    model = await Model.create(client, admin_key, archive)
    for accuracy in (0.83, 0.805, 0.9):
        await model.improve(accuracy)
    exported = await client.get(
        f"/api/v1/models/{model.name}/attestations/export", headers=auth(admin_key)
    )
    assert exported.status_code == 200, exported.text
    body: dict[str, Any] = exported.json()
    body["trusted_keys"] = (
        await client.get("/api/v1/attestations/keys", headers=auth(admin_key))
    ).json()
    return body


def failures(report: hokusai.VerifyReport) -> set[tuple[str, str]]:
    return {(f.attestation, f.check) for f in report.failures}


def test_an_exported_chain_verifies_offline(bundle: dict[str, Any]) -> None:
    report = hokusai.verify(bundle)
    assert report.valid, report.failures
    assert report.attestations == 3
    assert len(report.checks) == 3 * 9
    assert hokusai.verify(bundle, keys=bundle["trusted_keys"]).valid


def test_each_kind_of_tampering_is_named(bundle: dict[str, Any]) -> None:
    ids = [a["id"] for a in bundle["attestations"]]

    edited = copy.deepcopy(bundle)
    edited["attestations"][1]["statement"]["predicate"]["decision"]["gain_pp"] = 42.0
    assert failures(hokusai.verify(edited)) == {(ids[1], "statement")}

    forged = copy.deepcopy(bundle)
    statement = forged["attestations"][1]["statement"]
    statement["predicate"]["decision"]["gain_pp"] = 42.0
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    forged["attestations"][1]["envelope"]["payload"] = base64.b64encode(payload).decode()
    named = failures(hokusai.verify(forged))
    assert {(ids[1], "id"), (ids[1], "signature")} <= named

    removed = copy.deepcopy(bundle)
    del removed["attestations"][1]
    assert failures(hokusai.verify(removed)) == {(ids[2], "chain")}

    reordered = copy.deepcopy(bundle)
    reordered["attestations"][0], reordered["attestations"][1] = (
        reordered["attestations"][1],
        reordered["attestations"][0],
    )
    assert {check for _, check in failures(hokusai.verify(reordered))} == {"chain"}

    swapped = copy.deepcopy(bundle)
    stranger = Ed25519PrivateKey.generate().public_key()
    for key in swapped["keys"]:
        key["public_key_pem"] = stranger.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    assert {check for _, check in failures(hokusai.verify(swapped))} == {"signature"}

    untrusted = hokusai.verify(bundle, keys={"keys": swapped["keys"]})
    assert not untrusted.valid

    other_model = copy.deepcopy(bundle)
    other_model["model"] = "someone-elses-model"
    assert {check for _, check in failures(hokusai.verify(other_model))} == {"subject"}


def test_the_command_line_exits_0_only_when_every_check_holds(
    bundle: dict[str, Any], tmp_path: Path
) -> None:
    good = tmp_path / "bundle.json"
    good.write_text(json.dumps(bundle))
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(bundle["trusted_keys"]))
    command = [sys.executable, "-m", "hokusai.cli", "verify"]
    passed = subprocess.run(
        [*command, str(good), "--keys", str(keys)], capture_output=True, text=True, check=False
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.strip().endswith("valid")
    tampered = copy.deepcopy(bundle)
    tampered["attestations"][0]["statement"]["predicate"]["contributors"] = []
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered))
    failed = subprocess.run(
        [*command, str(bad), "--json"], capture_output=True, text=True, check=False
    )
    assert failed.returncode == 1
    report = json.loads(failed.stdout)
    assert report["valid"] is False
    assert [c["check"] for c in report["checks"] if not c["ok"]] == ["statement"]


@pytest.mark.parametrize(
    "hostile",
    [
        [],
        {"attestations": "everything"},
        {"attestations": [1, None, "x"]},
        {"attestations": [{"id": "sha256:00", "envelope": ["not", "an", "object"]}]},
        {
            "model": "m",
            "attestations": [
                {
                    "id": "sha256:00",
                    "envelope": {
                        "payloadType": "application/vnd.in-toto+json",
                        "payload": base64.b64encode(b"[1, 2, 3]").decode(),
                        "signatures": ["sig"],
                    },
                }
            ],
            "keys": [1, {"keyid": "k", "public_key_pem": "not a key"}],
        },
        {"attestations": [{"envelope": {"payload": base64.b64encode(b"[" * 100_000).decode()}}]},
    ],
)
def test_a_hostile_bundle_is_reported_invalid_not_a_crash(hostile: Any) -> None:
    report = hokusai.verify(hostile)
    assert not report.valid
    assert report.failures
