"""Contributors: the list of every contributor (their counts and their accepted gains, measured
and claimed apart, the largest measured gain first, then the largest claimed one) and one
contributor's impact, exact and blind to the address's case."""

from __future__ import annotations

import secrets

import httpx

from app.rules.contributors import checksummed
from tests.api.test_errors import assert_problem
from tests.conftest import auth
from tests.factories import CONTRIBUTOR, OTHER_CONTRIBUTOR, Model


async def test_every_contributor_is_listed_with_exact_gains_largest_first(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    # Addresses of this test's own: other tests' contributors may share the database.
    first, second = ("0x" + secrets.token_hex(20) for _ in range(2))
    model = await Model.create(client, admin_key, archive)
    await model.improve(
        0.83, contributors=[{"address": first, "weight": 3}, {"address": second, "weight": 1}]
    )  # +3 pp, accepted: 2.25 and 0.75 pp weighted
    await model.improve(0.831, contributors=[{"address": second, "weight": 1}])  # below 1 pp

    response = await client.get("/api/v1/contributors?limit=500", headers=auth(admin_key))
    assert response.status_code == 200, response.text
    page = response.json()
    listed = [c["address"] for c in page["items"]]
    assert page["total"] >= 2
    mine = {
        c["address"]: c
        for c in page["items"]
        if c["address"] in {checksummed(first), checksummed(second)}
    }
    one, two = mine[checksummed(first)], mine[checksummed(second)]
    assert listed.index(one["address"]) < listed.index(two["address"]), "the larger gain first"
    assert (one["contributions"], one["models_improved"], one["deltaone_accepted"]) == (1, 1, 1)
    assert one["claimed_accepted_gain_pp"] == 2.25
    assert one["measured_accepted_gain_pp"] == 0.0, "no held benchmark: nothing measured"
    assert (two["contributions"], two["deltaone_accepted"]) == (2, 1), "one below the threshold"
    assert two["claimed_accepted_gain_pp"] == 0.75

    at = listed.index(two["address"])
    paged = await client.get(f"/api/v1/contributors?limit=1&offset={at}", headers=auth(admin_key))
    assert [c["address"] for c in paged.json()["items"]] == [two["address"]]


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
