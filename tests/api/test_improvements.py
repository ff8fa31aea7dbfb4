"""Improvements that can be trusted: DeltaOne on registration, attestations verified with code
that is not ours, the hash chain catching an edited row, lineage and contributor impact."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import rfc8785
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from eth_account import Account
from sqlalchemy import event

from app.core.config import Settings
from tests.api.test_errors import assert_problem
from tests.api.test_ml_models import register_baseline
from tests.conftest import auth, serve
from tests.factories import (
    CONTRIBUTOR,
    DATASET,
    OTHER_CONTRIBUTOR,
    improved,
    save_sklearn,
    tar_gz,
    unique,
    upload,
    variant,
)
from tests.services_under_test import sync_url

EIP712_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return tar_gz(save_sklearn(tmp_path_factory.mktemp("improvement-models"))[0])


@pytest.fixture
async def signing_client(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        eip712_signing_key=EIP712_KEY,
        eip712_chain_id=8453,
        eip712_verifying_contract="0x00000000000000000000000000000000000000A1",
        attestation_key_file=str(tmp_path / "ed25519.pem"),
        deltaone_cooldown_s=0,
    )
    async with serve(settings) as client:
        yield client


class Model:
    """A model with a baseline, improved by registrations of variants of its artifact (the same
    model with one more file: never its parent's files)."""

    def __init__(self, client: httpx.AsyncClient, key: str, name: str, archive: bytes) -> None:
        self.client, self.key, self.name, self.archive = client, key, name, archive

    @classmethod
    async def create(
        cls, client: httpx.AsyncClient, key: str, archive: bytes, **fields: Any
    ) -> Model:
        name = unique()
        await register_baseline(
            client, key, archive, name, dataset={**DATASET, "num_samples": 5000}, **fields
        )
        return cls(client, key, name, archive)

    def improvement(self, accuracy: float, **fields: Any) -> dict[str, Any]:
        """The metadata of an improved version claiming `accuracy`."""
        return {
            **improved(self.name),
            "metrics": {"accuracy": accuracy},
            "dataset": {**DATASET, "num_samples": 5000},
            **fields,
        }

    async def improve(self, accuracy: float, **fields: Any) -> dict[str, Any]:
        response = await upload(
            self.client, self.key, self.improvement(accuracy, **fields), variant(self.archive)
        )
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.client.get(
            f"/api/v1/models/{self.name}{path}", params=params, headers=auth(self.key)
        )
        assert response.status_code == 200, response.text
        return response.json() if "json" in response.headers["content-type"] else response.text


async def test_an_accepted_improvement_carries_its_decision(
    signing_client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    model = await Model.create(signing_client, admin_key, archive)
    version = await model.improve(0.83)
    decision = version["deltaone"]
    assert decision["accepted"] is True
    assert decision["reason"] == "accepted"
    assert decision["metric"] == "accuracy"
    assert decision["gain_pp"] == 3.0
    assert 0 < decision["ci_low_pp"] < 3.0 < decision["ci_high_pp"]
    assert (decision["n_parent"], decision["n_candidate"]) == (5000, 5000)
    assert (decision["threshold_pp"], decision["min_samples"]) == (1.0, 800)
    assert version["attestation_id"].startswith("sha256:")


async def test_rejections_name_the_first_failing_check(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    model = await Model.create(client, admin_key, archive)
    few = await model.improve(0.9, dataset={**DATASET, "num_samples": 100})
    other = await model.improve(0.9, dataset={"hash": "sha256:" + "cd" * 32, "num_samples": 5000})
    small = await model.improve(0.805)
    first = await model.improve(0.83)
    cooled = await model.improve(0.86)
    assert [v["deltaone"]["reason"] for v in (few, other, small, first, cooled)] == [
        "insufficient_samples",
        "dataset_hash_mismatch",
        "delta_below_threshold",
        "accepted",
        "cooldown_active",
    ]
    assert all(v["attestation_id"] for v in (few, other, small, first, cooled))
    assert (await model.get("/versions/1"))["attestation_id"] is None, "baselines are not attested"


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


async def test_lineage_graph_in_three_formats(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    model = await Model.create(client, admin_key, archive)
    v2 = await model.improve(0.83)
    await client.put(
        f"/api/v1/models/{model.name}/aliases/production",
        json={"version": 2},
        headers=auth(admin_key),
    )
    v3 = await model.improve(0.845)  # parent: production (v2)
    v4 = await model.improve(0.80, parent_version=1)  # a sibling branch
    assert (v3["parent_version"], v4["parent_version"]) == (2, 1)

    whole = await model.get("/lineage")
    assert [n["version"] for n in whole["nodes"]] == [1, 2, 3, 4]
    assert sorted((e["parent"], e["child"]) for e in whole["edges"]) == [(1, 2), (1, 4), (2, 3)]
    assert whole["cumulative_gain_pp"] is None
    edge = next(e for e in whole["edges"] if e["child"] == 2)
    assert edge == {
        "parent": 1,
        "child": 2,
        "gain_pp": 3.0,
        "deltaone_accepted": True,
        "reason": "accepted",
        "basis": "claimed",
        "contributors": [{"address": CONTRIBUTOR, "weight_bps": 10000}],
        "attestation_id": v2["attestation_id"],
    }

    path = await model.get("/lineage", version=3, direction="ancestors")
    assert [n["version"] for n in path["nodes"]] == [1, 2, 3]
    assert path["cumulative_gain_pp"] == 4.5
    near = await model.get("/lineage", version=3, direction="ancestors", depth=1)
    assert [n["version"] for n in near["nodes"]] == [2, 3]
    assert near["cumulative_gain_pp"] == 4.5, "still measured from the root"
    below = await model.get("/lineage", version=1, direction="descendants", depth=1)
    assert [n["version"] for n in below["nodes"]] == [1, 2, 4]
    everything = await model.get("/lineage", version=2)
    assert [n["version"] for n in everything["nodes"]] == [1, 2, 3]

    mermaid = await model.get("/lineage", format="mermaid")
    assert mermaid.startswith("graph TD\n")
    assert 'v1 -->|"+3 pp accepted (claimed)"| v2' in mermaid
    dot = await model.get("/lineage", format="dot", version=3)
    assert dot.startswith(f'digraph "{model.name}" {{')
    assert 'v2 -> v3 [label="+1.5 pp cooldown_active (claimed)"];' in dot
    assert "v1 -> v4" not in dot, "v4 is not on v3's line"
    missing = await client.get(
        f"/api/v1/models/{model.name}/lineage?version=99", headers=auth(admin_key)
    )
    assert_problem(missing, 404, "version_not_found")


async def test_lineage_costs_the_same_queries_at_any_depth(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    """One recursive query, not one per hop: the statement count does not grow with depth."""
    model = await Model.create(client, admin_key, archive)
    for step in range(12):
        version = await model.improve(0.80 + step / 1000, parent_version=step + 1)
    engine = client.app.state.resources.engine.sync_engine  # type: ignore[attr-defined]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    async def queries_for(target: int) -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            body = await model.get("/lineage", version=target, direction="ancestors")
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(body["nodes"]) == target
        return len(statements)

    assert version["version"] == 13
    assert await queries_for(3) == await queries_for(13)
    assert sum("RECURSIVE" in s for s in statements) == 1


async def test_contributor_impact_is_exact_and_case_blind(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    first = await Model.create(client, admin_key, archive)
    second = await Model.create(client, admin_key, archive)
    both = [{"address": CONTRIBUTOR, "weight": 1}, {"address": OTHER_CONTRIBUTOR, "weight": 2}]
    a = await first.improve(0.83, contributors=both)  # +3 pp accepted; CONTRIBUTOR has 3333 bps
    b = await first.improve(
        0.805, contributors=[{"address": CONTRIBUTOR, "weight": 5}]
    )  # +0.5 rejected
    c = await second.improve(0.84)  # +4 pp accepted, CONTRIBUTOR alone
    headers = auth(admin_key)
    impact = (
        await client.get(f"/api/v1/contributors/{CONTRIBUTOR.lower()}/impact", headers=headers)
    ).json()
    assert impact["address"] == CONTRIBUTOR
    assert impact["contributions"] == 3
    assert impact["models_improved"] == 2
    assert impact["deltaone_accepted"] == 2
    # 3.0 x 3333 / 10000 + 0.5 x 10000 / 10000 + 4.0 = 0.9999 + 0.5 + 4.0
    assert impact["weighted_gain_pp"] == 5.4999
    assert impact["accepted_weighted_gain_pp"] == 4.9999
    assert impact["first_contribution_at"] == a["created_at"]
    assert impact["last_contribution_at"] == c["created_at"]
    assert impact["attestation_ids"] == [
        a["attestation_id"],
        b["attestation_id"],
        c["attestation_id"],
    ]
    by_model = {m["model"]: m for m in impact["models"]}
    claimed = {
        "contributions": 2,
        "deltaone_accepted": 1,
        "weighted_gain_pp": 1.4999,
        "accepted_weighted_gain_pp": 0.9999,
    }
    nothing = dict.fromkeys(claimed, 0)
    assert by_model[first.name] == {
        "model": first.name,
        "versions": 2,
        "weighted_gain_pp": 1.4999,
        "deltaone_accepted": 1,
        "measured": nothing,
        "claimed": claimed,
    }
    # No held benchmark here: every gain is claimed, none measured.
    assert impact["measured"] == nothing
    assert impact["claimed"] == {
        "contributions": 3,
        "deltaone_accepted": 2,
        "weighted_gain_pp": 5.4999,
        "accepted_weighted_gain_pp": 4.9999,
    }
    assert by_model[second.name]["weighted_gain_pp"] == 4.0
    upper = (
        await client.get(
            f"/api/v1/contributors/0x{CONTRIBUTOR[2:].upper()}/impact", headers=headers
        )
    ).json()
    assert upper == impact
    other = (
        await client.get(f"/api/v1/contributors/{OTHER_CONTRIBUTOR}/impact", headers=headers)
    ).json()
    assert other["weighted_gain_pp"] == 2.0001  # 3.0 x 6667 / 10000

    page = (
        await client.get(
            f"/api/v1/contributors/{CONTRIBUTOR}/contributions?limit=2", headers=headers
        )
    ).json()
    assert page["total"] == 3
    assert [(i["model"], i["version"]) for i in page["items"]] == [
        (second.name, 2),
        (first.name, 3),
    ]
    assert page["items"][1] == {
        "model": first.name,
        "version": 3,
        "weight_bps": 10000,
        "gain_pp": 0.5,
        "deltaone_accepted": False,
        "basis": "claimed",
        "attestation_id": b["attestation_id"],
        "created_at": b["created_at"],
    }


async def test_unknown_address_has_zero_impact_and_bad_ones_are_422(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    headers = auth(admin_key)
    nobody = (
        await client.get("/api/v1/contributors/0x" + "1" * 40 + "/impact", headers=headers)
    ).json()
    assert nobody == {
        "address": "0x" + "1" * 40,
        "contributions": 0,
        "models_improved": 0,
        "deltaone_accepted": 0,
        "weighted_gain_pp": 0.0,
        "accepted_weighted_gain_pp": 0.0,
        "measured": {
            "contributions": 0,
            "deltaone_accepted": 0,
            "weighted_gain_pp": 0.0,
            "accepted_weighted_gain_pp": 0.0,
        },
        "claimed": {
            "contributions": 0,
            "deltaone_accepted": 0,
            "weighted_gain_pp": 0.0,
            "accepted_weighted_gain_pp": 0.0,
        },
        "first_contribution_at": None,
        "last_contribution_at": None,
        "models": [],
        "attestation_ids": [],
    }
    bad_checksum = "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    for address in ("0x123", bad_checksum):
        response = await client.get(f"/api/v1/contributors/{address}/impact", headers=headers)
        assert_problem(response, 422, "invalid_address")
