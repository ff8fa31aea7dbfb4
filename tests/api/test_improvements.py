"""Improvements judged when they are registered: an accepted one carries its decision, a
rejected one names the first check it failed."""

from __future__ import annotations

import httpx

from tests.factories import DATASET, Model


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
