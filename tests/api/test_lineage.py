"""Lineage: the graph of a model's versions in three formats, one query at any depth."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import event

from tests.api.test_errors import assert_problem
from tests.conftest import auth
from tests.factories import CONTRIBUTOR, Model


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
