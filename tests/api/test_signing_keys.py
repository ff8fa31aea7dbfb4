"""Signing keys have a validity period: a rotated key stops signing and what it signed stays
valid; a key retired after a compromise invalidates only what it signed from the moment it was
compromised. Driven through `hokusai-api signing-key` against the real database, checked through
the API and offline with `hokusai.verify`."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import hokusai
import httpx
import pytest

from app.cli import main
from app.core.config import Settings
from tests.conftest import auth, serve
from tests.factories import Model, upload, variant
from tests.services_under_test import settings_env


async def cli(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *argv: str,
) -> Any:
    """`hokusai-api ...` with the service's settings in the environment (in a thread: it runs
    its own event loop); its JSON output."""
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOKUSAI_LOG_LEVEL", "WARNING")
    capsys.readouterr()
    await asyncio.to_thread(main, list(argv))
    out = capsys.readouterr().out
    return json.loads(out) if out.lstrip().startswith(("[", "{")) else out.strip()


async def export(client: httpx.AsyncClient, key: str, name: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/models/{name}/attestations/export", headers=auth(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_rotated_key_signs_nothing_more_and_what_it_signed_stays_valid(
    make_settings: Callable[..., Settings],
    admin_key: str,
    archive: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = make_settings(attestation_key_file=str(tmp_path / "old.pem"))
    new = make_settings(attestation_key_file=str(tmp_path / "new.pem"))
    async with serve(old) as client:
        model = await Model.create(client, admin_key, archive)
        first = await model.improve(0.83)
    new_id = await cli(
        new, monkeypatch, capsys, "signing-key", "generate", str(tmp_path / "new.pem")
    )
    assert (tmp_path / "new.pem").stat().st_mode & 0o777 == 0o600
    with pytest.raises(SystemExit, match="exists; not overwritten"):
        await cli(new, monkeypatch, capsys, "signing-key", "generate", str(tmp_path / "new.pem"))

    async with serve(new) as client:
        model.client = client
        second = await model.improve(0.9)  # both keys valid: a rolling deploy signs with either
        keys = await cli(new, monkeypatch, capsys, "signing-key", "rotate")
        by_id = {k["keyid"]: k for k in keys}
        assert by_id[new_id]["status"] == "active"
        assert by_id[new_id]["valid_until"] is None
        [old_id] = set(by_id) - {new_id}
        assert by_id[old_id]["status"] == "rotated"
        assert by_id[old_id]["valid_until"] is not None
        assert by_id[old_id]["compromised_at"] is None
        bundle = await export(client, admin_key, model.name)
        published = (await client.get("/api/v1/attestations/keys", headers=auth(admin_key))).json()
        chain = (
            await client.get(
                f"/api/v1/models/{model.name}/attestations/verify", headers=auth(admin_key)
            )
        ).json()

    signers = [a["envelope"]["signatures"][0]["keyid"] for a in bundle["attestations"]]
    assert signers == [old_id, new_id]
    assert [a["id"] for a in bundle["attestations"]] == [
        first["attestation_id"],
        second["attestation_id"],
    ]
    report = hokusai.verify(bundle, keys=published)
    assert report.valid, report.failures
    assert {c.check for c in report.checks} >= {"key_validity"}
    assert chain["valid"] is True, chain

    async with serve(old) as client:  # a replica left on the rotated key
        model.client = client
        refused = await upload(client, admin_key, model.improvement(0.95), variant(model.archive))
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "signing_key_retired"
        assert old_id in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) >= 1
        versions = await model.get("/versions")
    assert [v["version"] for v in versions["items"]] == [3, 2, 1], "nothing half-written"


async def test_a_compromised_key_invalidates_what_it_signed_from_then_on_only(
    settings: Settings,
    client: httpx.AsyncClient,
    admin_key: str,
    archive: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = await Model.create(client, admin_key, archive)
    before = await model.improve(0.83)
    after = await model.improve(0.9)
    bundle = await export(client, admin_key, model.name)
    [early, late] = bundle["attestations"]
    compromised_at = late["statement"]["predicate"]["issued_at"]  # the stolen key signed `late`
    keyid = early["envelope"]["signatures"][0]["keyid"]

    retired = await cli(
        settings,
        monkeypatch,
        capsys,
        "signing-key",
        "retire",
        keyid,
        "--compromised-at",
        compromised_at,
    )
    assert retired["status"] == "compromised"
    assert datetime.fromisoformat(retired["compromised_at"]) == datetime.fromisoformat(
        compromised_at
    )
    assert retired["valid_until"] == retired["compromised_at"]

    published = (await client.get("/api/v1/attestations/keys", headers=auth(admin_key))).json()
    report = hokusai.verify(await export(client, admin_key, model.name), keys=published)
    failed = [(f.attestation, f.check) for f in report.failures]
    assert failed == [(after["attestation_id"], "key_validity")]
    assert "compromised" in report.failures[0].detail
    assert before["attestation_id"] not in {f.attestation for f in report.failures}

    # The service says the same, for one envelope and for the chain.
    for attestation, valid, reason in ((early, True, None), (late, False, "key_compromised")):
        answer = (
            await client.post(
                "/api/v1/attestations/verify",
                json={"envelope": attestation["envelope"]},
                headers=auth(admin_key),
            )
        ).json()
        assert (answer["valid"], answer["reason"]) == (valid, reason), answer
    chain = (
        await client.get(
            f"/api/v1/models/{model.name}/attestations/verify", headers=auth(admin_key)
        )
    ).json()
    assert chain == {
        "valid": False,
        "length": 2,
        "broken_at": after["attestation_id"],
        "reason": "key_compromised",
    }

    # And nothing more is signed with it.
    refused = await upload(client, admin_key, model.improvement(0.95), variant(model.archive))
    assert refused.status_code == 503
    assert refused.json()["code"] == "signing_key_retired"


async def test_a_forged_envelope_signed_with_the_stolen_key_later_is_refused(
    settings: Settings,
    client: httpx.AsyncClient,
    admin_key: str,
    archive: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The thief signs a statement of their own (an inflated value), dated after the
    compromise: the service refuses it as signed with a compromised key."""
    from app.services.attestations import canonical
    from app.services.signing import Signer

    model = await Model.create(client, admin_key, archive)
    genuine = await model.improve(0.83)
    bundle = await export(client, admin_key, model.name)
    statement = bundle["attestations"][0]["statement"]
    keyid = bundle["attestations"][0]["envelope"]["signatures"][0]["keyid"]
    await cli(
        settings,
        monkeypatch,
        capsys,
        "signing-key",
        "retire",
        keyid,
        "--compromised-at",
        statement["predicate"]["issued_at"],
    )
    stolen = Signer.from_settings(settings)
    forged = json.loads(json.dumps(statement))
    forged["predicate"]["values"]["candidate"] = 0.99
    forged["predicate"]["issued_at"] = "2027-01-01T00:00:00Z"
    envelope = stolen.envelope(canonical(forged))
    answer = (
        await client.post(
            "/api/v1/attestations/verify", json={"envelope": envelope}, headers=auth(admin_key)
        )
    ).json()
    assert (answer["valid"], answer["reason"]) == (False, "key_compromised"), answer
    payload = json.loads(base64.b64decode(envelope["payload"]))
    assert payload["predicate"]["values"]["candidate"] == 0.99
    assert genuine["attestation_id"] != answer["attestation_id"]


async def test_the_command_line_refuses_unknown_keys_and_times_without_a_zone(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit, match="No signing key"):
        await cli(settings, monkeypatch, capsys, "signing-key", "retire", "ab" * 32)
    with pytest.raises(SystemExit):
        await cli(
            settings,
            monkeypatch,
            capsys,
            "signing-key",
            "retire",
            "ab" * 32,
            "--compromised-at",
            "2026-12-01T09:30:00",
        )
    assert "give the time zone" in capsys.readouterr().err
