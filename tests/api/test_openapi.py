from __future__ import annotations

import json

import httpx

from app.cli import ROOT

PUBLIC = {"/health", "/ready", "/metrics"}


async def test_committed_openapi_matches_the_app(client: httpx.AsyncClient) -> None:
    """`make openapi` regenerates the file; this fails when the API drifts from it."""
    served = (await client.get("/openapi.json")).json()
    committed = json.loads((ROOT / "openapi.json").read_text())
    assert served == committed, "openapi.json is stale: run `make openapi` and commit it"


async def test_every_api_path_is_versioned_and_declares_its_errors(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    operation_ids = []
    for path, operations in document["paths"].items():
        if path in PUBLIC:
            continue
        assert path.startswith("/api/v1/"), path
        for method, operation in operations.items():
            operation_ids.append(operation["operationId"])
            responses = operation["responses"]
            for status in ("401", "403", "429", "500", "503"):
                assert status in responses, f"{method.upper()} {path} lacks {status}"
                assert "application/problem+json" in responses[status]["content"]
            assert operation.get("security"), f"{method.upper()} {path} is not authenticated"
            assert operation.get("description"), f"{method.upper()} {path} has no docstring"
    assert len(operation_ids) == len(set(operation_ids))
    assert all("_api_v1_" not in operation_id for operation_id in operation_ids)


async def test_problem_schema_names_the_fields_clients_rely_on(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code", "request_id"} <= set(problem["required"])
