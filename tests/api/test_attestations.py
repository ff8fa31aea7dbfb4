"""Attestations that can be trusted: verified with code that is not ours, EIP-712 only for accepted
improvements, forged and foreign envelopes told apart, the hash chain naming an edited row."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import httpx
import psycopg
import rfc8785
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from eth_account import Account

from tests.api.test_errors import assert_problem
from tests.conftest import EIP712_KEY, auth
from tests.factories import CONTRIBUTOR, OTHER_CONTRIBUTOR, Model
from tests.services_under_test import sync_url


async def test_attestation_verifies_with_standard_tools(
    signing_client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    model = await Model.create(signing_client, admin_key, archive)
    version = await model.improve(
        0.83,
        contributors=[
            {"address": CONTRIBUTOR, "weight": 3},
            {"address": OTHER_CONTRIBUTOR, "weight": 1},
        ],
    )
    headers = auth(admin_key)
    attestation = (
        await signing_client.get(
            f"/api/v1/attestations/{version['attestation_id']}", headers=headers
        )
    ).json()
    keys = (await signing_client.get("/api/v1/attestations/keys", headers=headers)).json()
    envelope = attestation["envelope"]
    payload = base64.b64decode(envelope["payload"])

    # The id is the SHA-256 of the RFC 8785 form of the statement.
    assert payload == rfc8785.dumps(attestation["statement"])
    assert attestation["id"] == "sha256:" + hashlib.sha256(payload).hexdigest()
    statement = attestation["statement"]
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://hokusai.ai/attestations/model-improvement/v1"
    assert statement["subject"] == [
        {
            "name": f"models/{model.name}/versions/2",
            "digest": {"sha256": version["artifact"]["digest"].removeprefix("sha256:")},
        }
    ]
    predicate = statement["predicate"]
    assert predicate["contributors"] == [
        {"address": CONTRIBUTOR, "bps": 7500},
        {"address": OTHER_CONTRIBUTOR, "bps": 2500},
    ]
    assert predicate["values"] == {"parent": 0.8, "candidate": 0.83}
    assert predicate["decision"]["accepted"] is True
    assert predicate["previous_attestation"] is None

    # DSSE: Ed25519 over the pre-authentication encoding, checked with `cryptography` alone.
    [signature] = envelope["signatures"]
    [key] = [k for k in keys["keys"] if k["keyid"] == signature["keyid"]]
    public_key = load_pem_public_key(key["public_key_pem"].encode())
    kind = envelope["payloadType"].encode()
    message = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
    public_key.verify(base64.b64decode(signature["sig"]), message)  # type: ignore[union-attr, call-arg]

    # Claimed numbers are never signed for a payout contract: EIP-712 is for measured ones.
    assert attestation["eip712"] is None
    assert keys["eip712_signer"] == Account.from_key(EIP712_KEY).address


async def test_rejected_improvements_get_no_eip712_signature(
    signing_client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    model = await Model.create(signing_client, admin_key, archive)
    version = await model.improve(0.801)
    attestation = (
        await signing_client.get(
            f"/api/v1/attestations/{version['attestation_id']}", headers=auth(admin_key)
        )
    ).json()
    assert attestation["eip712"] is None
    assert attestation["statement"]["predicate"]["decision"]["reason"] == "delta_below_threshold"


async def test_verify_endpoint_tells_valid_forged_and_foreign_envelopes_apart(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    model = await Model.create(client, admin_key, archive)
    version = await model.improve(0.83)
    headers = auth(admin_key)
    envelope = (
        await client.get(f"/api/v1/attestations/{version['attestation_id']}", headers=headers)
    ).json()["envelope"]

    async def verify(candidate: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(
            "/api/v1/attestations/verify", json={"envelope": candidate}, headers=headers
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    good = await verify(envelope)
    assert good == {
        "valid": True,
        "keyid": envelope["signatures"][0]["keyid"],
        "attestation_id": version["attestation_id"],
        "matches_record": True,
        "reason": None,
    }
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["contributors"][0]["bps"] = 9999
    forged_payload = rfc8785.dumps(statement)
    forged = {**envelope, "payload": base64.b64encode(forged_payload).decode()}
    result = await verify(forged)
    assert (result["valid"], result["matches_record"], result["reason"]) == (
        False,
        False,
        "bad_signature",
    )
    stranger = Ed25519PrivateKey.generate()
    kind = envelope["payloadType"].encode()
    payload = base64.b64decode(envelope["payload"])
    foreign_sig = stranger.sign(b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload))
    foreign = {
        **envelope,
        "signatures": [{"keyid": "0" * 64, "sig": base64.b64encode(foreign_sig).decode()}],
    }
    assert (await verify(foreign))["reason"] == "unknown_key"


async def test_chain_verification_names_a_row_edited_in_postgres(
    client: httpx.AsyncClient, admin_key: str, archive: bytes, database_url: str
) -> None:
    model = await Model.create(client, admin_key, archive)
    versions = [await model.improve(value) for value in (0.81, 0.805, 0.82)]
    chain = await model.get("/attestations/verify")
    assert chain == {"valid": True, "length": 3, "broken_at": None, "reason": None}
    listed = await model.get("/attestations")
    ids = [item["id"] for item in listed["items"]]
    assert ids == [v["attestation_id"] for v in versions]
    assert [item["statement"]["predicate"]["previous_attestation"] for item in listed["items"]] == [
        None,
        *ids[:2],
    ]

    tampered = ids[1]
    with psycopg.connect(sync_url(database_url), autocommit=True) as connection:
        connection.execute(
            "UPDATE attestations SET payload = "
            "replace(payload, '\"bps\":10000', '\"bps\":9000') WHERE id = %s",
            (tampered,),
        )
    broken = await model.get("/attestations/verify")
    assert broken == {
        "valid": False,
        "length": 3,
        "broken_at": tampered,
        "reason": "digest_mismatch",
    }


async def test_unknown_attestation_is_404(client: httpx.AsyncClient, admin_key: str) -> None:
    response = await client.get("/api/v1/attestations/sha256:" + "0" * 64, headers=auth(admin_key))
    assert_problem(response, 404, "attestation_not_found")
