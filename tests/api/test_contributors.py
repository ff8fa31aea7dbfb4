"""The list of every contributor: their counts and their accepted gains, measured and claimed
apart, the largest measured gain first, then the largest claimed one."""

from __future__ import annotations

import secrets

import httpx
import pytest

from app.services.contributors import checksummed
from tests.api.test_improvements import Model
from tests.conftest import auth
from tests.factories import save_sklearn, tar_gz


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return tar_gz(save_sklearn(tmp_path_factory.mktemp("contributors"))[0])


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
