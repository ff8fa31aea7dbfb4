"""The list of every contributor: their counts and their accepted gains, measured and claimed
apart, the largest measured gain first."""

from __future__ import annotations

import httpx
import pytest

from tests.api.test_improvements import Model
from tests.conftest import auth
from tests.factories import OTHER_CONTRIBUTOR, save_sklearn, tar_gz

CONTRIBUTOR = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return tar_gz(save_sklearn(tmp_path_factory.mktemp("contributors"))[0])


async def test_every_contributor_is_listed_with_exact_gains_largest_first(
    client: httpx.AsyncClient, admin_key: str, archive: bytes
) -> None:
    model = await Model.create(client, admin_key, archive)
    await model.improve(
        0.83,
        contributors=[
            {"address": CONTRIBUTOR, "weight": 3},
            {"address": OTHER_CONTRIBUTOR, "weight": 1},
        ],
    )  # +3 pp, accepted: 2.25 and 0.75 pp weighted
    await model.improve(0.831, contributors=[{"address": OTHER_CONTRIBUTOR, "weight": 1}])

    response = await client.get("/api/v1/contributors", headers=auth(admin_key))
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == 2
    first, second = page["items"]
    assert first["address"] == CONTRIBUTOR, "EIP-55, the largest accepted gain first"
    assert (first["contributions"], first["models_improved"], first["deltaone_accepted"]) == (
        1,
        1,
        1,
    )
    assert first["claimed_accepted_gain_pp"] == 2.25
    assert first["measured_accepted_gain_pp"] == 0.0, "no held benchmark: nothing measured"
    assert second["address"] == OTHER_CONTRIBUTOR
    assert second["contributions"] == 2
    assert second["deltaone_accepted"] == 1, "the second is below the threshold"
    assert second["claimed_accepted_gain_pp"] == 0.75

    paged = await client.get("/api/v1/contributors?limit=1&offset=1", headers=auth(admin_key))
    assert [c["address"] for c in paged.json()["items"]] == [OTHER_CONTRIBUTOR]
