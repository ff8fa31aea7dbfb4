"""Hostile bytes from anyone: bodies nested to crash the parser, numbers past the database's
integers, control characters. Each gets a problem+json 4xx and the process keeps answering."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from app.core.config import Settings
from tests.api.test_errors import assert_problem
from tests.conftest import LiveService, auth
from tests.factories import (
    CONTRIBUTOR,
    OTHER_CONTRIBUTOR,
    baseline,
    improved,
    save_sklearn,
    tar_gz,
    unique,
    upload,
    variant,
)

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = json.loads((ROOT / "openapi.json").read_text())
PLACEHOLDERS = {
    "name": "m",
    "version": "1",
    "alias": "production",
    "ab_test_id": str(uuid.UUID(int=1)),
    "api_key_id": str(uuid.UUID(int=1)),
}
BODY_ROUTES = [
    (method.upper(), path.format(**PLACEHOLDERS))
    for path, operations in CONTRACT["paths"].items()
    for method, operation in operations.items()
    if "application/json" in operation.get("requestBody", {}).get("content", {})
]


def deep(depth: int) -> bytes:
    return b'{"name":' + b"[" * depth + b"]" * depth + b"}"


def test_importing_the_app_leaves_the_recursion_limit_alone() -> None:
    code = "import sys; before = sys.getrecursionlimit(); import app.main; import app.cli; "
    code += "print(before, sys.getrecursionlimit())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = out.stdout.split()
    assert after == before


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize("with_key", [False, True])
def test_a_body_nested_100000_deep_is_refused_and_the_process_lives(
    live: LiveService, method: str, path: str, with_key: bool
) -> None:
    url, admin, process = live.url, live.admin_key, live.process
    headers = {"Content-Type": "application/json"}
    if with_key:
        headers["Authorization"] = f"Bearer {admin}"
    response = httpx.request(method, url + path, content=deep(100_000), headers=headers, timeout=30)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert process.poll() is None
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200


BIG = 2**31  # one past Postgres `integer`
HUGE = 2**63  # one past Postgres `bigint`
AB = f"/api/v1/ab-tests/{uuid.UUID(int=1)}"
VARIANTS = [{"name": "a", "version": 1, "weight": 0.5}, {"name": "b", "version": 2, "weight": 0.5}]
AB_TEST = {
    "name": "t",
    "model": "m",
    "variants": VARIANTS,
    "metric": {"name": "c", "kind": "binary"},
}

# (method, path, JSON body or None, the field the 422 must name)
OUT_OF_RANGE = [
    ("GET", f"/api/v1/models?offset={HUGE}", None, ["query", "offset"]),
    ("GET", f"/api/v1/api-keys?offset={HUGE}", None, ["query", "offset"]),
    ("GET", f"/api/v1/ab-tests?offset={HUGE}", None, ["query", "offset"]),
    ("GET", f"/api/v1/models/m/versions/{BIG}", None, ["path", "version"]),
    ("GET", f"/api/v1/models/m/versions/{BIG}/artifact", None, ["path", "version"]),
    ("PATCH", f"/api/v1/models/m/versions/{BIG}", {"description": "x"}, ["path", "version"]),
    ("GET", f"/api/v1/models/m/compare?base={BIG}&candidate=1", None, ["query", "base"]),
    ("GET", f"/api/v1/models/m/lineage?version={BIG}", None, ["query", "version"]),
    ("PUT", "/api/v1/models/m/aliases/production", {"version": BIG}, ["body", "version"]),
    ("POST", "/api/v1/models/m/rollback", {"to_version": BIG}, ["body", "to_version"]),
    ("POST", "/api/v1/models/m/predict", {"inputs": {}, "version": BIG}, ["body", "version"]),
    (
        "POST",
        "/api/v1/ab-tests",
        {**AB_TEST, "variants": [{**VARIANTS[0], "version": BIG}, VARIANTS[1]]},
        ["body", "variants", 0, "version"],
    ),
    (
        "POST",
        "/api/v1/ab-tests",
        {**AB_TEST, "minimum_sample_size": BIG},
        ["body", "minimum_sample_size"],
    ),
    (
        "POST",
        "/api/v1/experiments/compare",
        {"candidate_run_id": "abc", "model": "m", "version": BIG},
        ["body", "version"],
    ),
]

NUL = [
    ("PATCH", "/api/v1/models/m", {"description": "a\x00b"}, ["body", "description"]),
    ("PATCH", "/api/v1/models/m", {"tags": {"k": "a\x00b"}}, ["body", "tags", "k"]),
    ("PATCH", "/api/v1/models/m", {"tags": {"a\x00b": "v"}}, ["body", "tags", "a\x00b", "[key]"]),
    ("POST", "/api/v1/api-keys", {"name": "a\x00b", "scopes": ["read"]}, ["body", "name"]),
    (
        "PUT",
        "/api/v1/models/m/aliases/production",
        {"version": 1, "reason": "\x00"},
        ["body", "reason"],
    ),
    ("POST", "/api/v1/models/m/rollback", {"reason": "a\x00"}, ["body", "reason"]),
    ("POST", "/api/v1/ab-tests", {**AB_TEST, "name": "t\x00"}, ["body", "name"]),
    ("POST", "/api/v1/ab-tests", {**AB_TEST, "unit": "u\x00"}, ["body", "unit"]),
    ("POST", f"{AB}/assign", {"unit_id": "u\x00"}, ["body", "unit_id"]),
    (
        "POST",
        f"{AB}/outcomes",
        {"events": [{"unit_id": "u", "value": 1}, {"unit_id": "\x00", "value": 1}]},
        ["body", "events", 1, "unit_id"],
    ),
    ("POST", "/api/v1/models/m/predict", {"inputs": {}, "unit_id": "\x00"}, ["body", "unit_id"]),
    ("GET", "/api/v1/models?token_id=A%00B", None, ["query", "token_id"]),
    ("GET", "/api/v1/ab-tests?model=m%00", None, ["query", "model"]),
    ("GET", "/api/v1/models/m%00x", None, ["path", "name"]),
    ("GET", "/api/v1/models/m%00x/versions", None, ["path", "name"]),
    ("POST", "/api/v1/models/m%00/predict", {"inputs": {}}, ["path", "name"]),
    ("GET", "/api/v1/attestations/sha256:%00", None, ["path", "attestation_id"]),
    ("GET", "/api/v1/experiments/1%00/runs", None, ["path", "experiment_id"]),
]

REFUSED = [
    # MLflow refuses these tag keys and metric names; so do we, before anything is written.
    ("PATCH", "/api/v1/models/m", {"tags": {"a\nb": "v"}}, ["body", "tags", "a\nb", "[key]"]),
    ("PATCH", "/api/v1/models/m", {"tags": {"a//b": "v"}}, ["body", "tags", "a//b", "[key]"]),
    ("PATCH", "/api/v1/models/m", {"tags": {"/a": "v"}}, ["body", "tags", "/a", "[key]"]),
    ("GET", "/api/v1/models/m/aliases/production/history?at=0.5", None, ["query", "at"]),
    ("GET", "/api/v1/models/m/aliases/production/history?at=true", None, ["query", "at"]),
    (
        "POST",
        "/api/v1/ab-tests",
        {**AB_TEST, "ends_at": "0001-01-01T00:00:00Z"},
        ["body", "ends_at"],
    ),
    ("POST", "/api/v1/ab-tests", {**AB_TEST, "ends_at": 1e12}, ["body", "ends_at"]),
    ("PATCH", AB, {"ends_at": "2020-01-01T00:00:00Z"}, ["body", "ends_at"]),
    # What people read must show what it says: no bidirectional override, ANSI escape or other
    # control character.
    ("POST", "/api/v1/ab-tests", {**AB_TEST, "name": "ops\u202eyek-nimda"}, ["body", "name"]),
    ("POST", "/api/v1/ab-tests", {**AB_TEST, "name": "a\nb"}, ["body", "name"]),
    ("POST", "/api/v1/api-keys", {"name": "\x1b[31mroot", "scopes": ["read"]}, ["body", "name"]),
    ("POST", "/api/v1/api-keys", {"name": "admin\u2066x", "scopes": ["read"]}, ["body", "name"]),
    ("PATCH", "/api/v1/models/m", {"tags": {"k": "ops\u202eyek"}}, ["body", "tags", "k"]),
    ("PATCH", "/api/v1/models/m", {"description": "\x1b[2J"}, ["body", "description"]),
    ("PATCH", "/api/v1/models/m", {"description": "a\x85b"}, ["body", "description"]),
    ("POST", "/api/v1/models/m/rollback", {"reason": "\u202e"}, ["body", "reason"]),
    # Numbers at their limits.
    (
        "POST",
        "/api/v1/models/register",
        {**baseline("m"), "source_uri": "runs:/abc/model", "metrics": {"accuracy": 1e301}},
        ["body", "metrics", "accuracy"],
    ),
    (
        "POST",
        "/api/v1/models/register",
        {
            **improved("m"),
            "source_uri": "runs:/abc/model",
            "contributors": [
                {"address": CONTRIBUTOR, "weight": 1e30},
                {"address": OTHER_CONTRIBUTOR, "weight": 1e-300},
            ],
        },
        ["body", "contributors", 0, "weight"],
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    OUT_OF_RANGE + NUL + REFUSED,
    ids=[f"{m} {p} {loc}" for m, p, _, loc in OUT_OF_RANGE + NUL + REFUSED],
)
async def test_hostile_values_are_422_naming_the_field(
    client: httpx.AsyncClient,
    admin_key: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    loc: list[str | int],
) -> None:
    response = await client.request(method, path, json=body, headers=auth(admin_key))
    problem = assert_problem(response, 422, "validation_failed")
    assert loc in [error["loc"] for error in problem["errors"]], problem  # type: ignore[union-attr]


UNIT_IDS = [
    ("POST", f"{AB}/assign", '{"unit_id": %s}', ["body", "unit_id"]),
    ("POST", f"{AB}/predict", '{"inputs": {}, "unit_id": %s}', ["body", "unit_id"]),
    (
        "POST",
        f"{AB}/outcomes",
        '{"events": [{"unit_id": %s, "value": 1}]}',
        ["body", "events", 0, "unit_id"],
    ),
    ("POST", "/api/v1/models/m/predict", '{"inputs": {}, "unit_id": %s}', ["body", "unit_id"]),
]


@pytest.mark.parametrize("unit_id", ["", "u" * 257, "u\x00"], ids=["empty", "257", "nul"])
@pytest.mark.parametrize(("method", "path", "body", "loc"), UNIT_IDS, ids=[u[1] for u in UNIT_IDS])
async def test_a_unit_id_follows_one_rule_wherever_it_is_taken(
    client: httpx.AsyncClient,
    admin_key: str,
    method: str,
    path: str,
    body: str,
    loc: list[str | int],
    unit_id: str,
) -> None:
    """1 to 256 characters, no NUL: predictions took an empty one that A/B tests refused."""
    content = body % json.dumps(unit_id)
    response = await client.request(
        method,
        path,
        content=content,
        headers={**auth(admin_key), "Content-Type": "application/json"},
    )
    problem = assert_problem(response, 422, "validation_failed")
    locs = [error["loc"] for error in problem["errors"]]  # type: ignore[union-attr]
    assert loc in locs, problem


async def test_a_token_id_is_ascii_before_it_is_upper_cased(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    name = unique()
    response = await client.post(
        "/api/v1/models/register",
        json={**baseline(name, token_id="straße"), "source_uri": "runs:/abc/model"},
        headers=auth(admin_key),
    )
    problem = assert_problem(response, 422, "validation_failed")
    assert ["body", "token_id"] in [error["loc"] for error in problem["errors"]]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "source_uri",
    [
        "mlflow-artifacts:/../../etc",
        "mlflow-artifacts:/a/..\\..\\etc",
        "runs:/0123456789abcdef0123456789abcdef/model",
    ],
)
async def test_a_source_uri_mlflow_refuses_is_400_not_an_outage(
    client: httpx.AsyncClient, admin_key: str, source_uri: str, mlflow_uri: str
) -> None:
    response = await client.post(
        "/api/v1/models/register",
        json={**baseline(unique()), "source_uri": source_uri},
        headers=auth(admin_key),
    )
    assert_problem(response, 400, "invalid_artifact")
    assert "retry-after" not in response.headers
    internal = urlsplit(mlflow_uri)
    assert f"{internal.hostname}:{internal.port}" not in response.text, "MLflow's address"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
async def test_a_body_that_is_not_json_is_415_on_every_json_route(
    client: httpx.AsyncClient, admin_key: str, method: str, path: str, content_type: str
) -> None:
    response = await client.request(
        method,
        path,
        content=b'{"inputs": {}, "unit_id": "u", "events": [{"unit_id": "u", "value": 1}]}',
        headers={**auth(admin_key), "Content-Type": content_type},
    )
    assert_problem(response, 415, "unsupported_media_type")


def test_the_contract_says_which_routes_answer_415() -> None:
    answering = {
        (method.upper(), path)
        for path, operations in CONTRACT["paths"].items()
        for method, operation in operations.items()
        if "415" in operation["responses"]
    }
    with_bodies = {  # a JSON body, or a multipart one (a benchmark's file)
        (method.upper(), path)
        for path, operations in CONTRACT["paths"].items()
        for method, operation in operations.items()
        if {"application/json", "multipart/form-data"}
        & set(operation.get("requestBody", {}).get("content", {}))
    }
    assert answering == with_bodies


async def test_database_errors_never_carry_statement_parameters(settings: Settings) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from app.db.session import create_engine

    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError) as raised:
                await connection.execute(
                    text("SELECT 1 / 0 WHERE :secret <> ''"), {"secret": "hk_x"}
                )
    finally:
        await engine.dispose()
    assert "hk_x" not in str(raised.value)
    assert "parameters hidden" in str(raised.value)


async def test_metrics_far_from_one_are_judged_not_500(
    client: httpx.AsyncClient, admin_key: str, tmp_path: Path
) -> None:
    """Continuous metrics of 1e21 and more, and a parent of 1e-300 (a gain of 1e302 percent):
    registered, judged, compared and listed, never a 500."""
    archive = tar_gz(save_sklearn(tmp_path)[0])
    continuous = {"metric": "revenue", "direction": "higher_is_better", "family": "continuous"}
    for parent, candidate in ((1e21, 1.5e22), (1e-300, 1.0), (-1e300, 1e300)):
        name = unique()
        first = await upload(
            client,
            admin_key,
            baseline(name, metrics={"revenue": parent}, benchmark=continuous),
            archive,
        )
        assert first.status_code == 201, first.text
        second = await upload(
            client,
            admin_key,
            improved(name, metrics={"revenue": candidate}, metric_stds={}),
            variant(archive),
        )
        assert second.status_code == 201, second.text
        compared = await client.get(
            f"/api/v1/models/{name}/compare?base=1&candidate=2", headers=auth(admin_key)
        )
        assert compared.status_code == 200, compared.text
        assert compared.json()["metrics"]["revenue"]["candidate"] == candidate
        for path in (
            f"/api/v1/models/{name}/lineage",
            f"/api/v1/contributors/{CONTRIBUTOR}/impact",
        ):
            answered = await client.get(path, headers=auth(admin_key))
            assert answered.status_code == 200, answered.text


async def test_a_split_that_leaves_a_contributor_nothing_is_refused(
    client: httpx.AsyncClient, admin_key: str, tmp_path: Path
) -> None:
    name = unique()
    archive = tar_gz(save_sklearn(tmp_path)[0])
    assert (await upload(client, admin_key, baseline(name), archive)).status_code == 201
    body = {
        **improved(name),
        "source_uri": "runs:/abc/model",
        "contributors": [
            {"address": CONTRIBUTOR, "weight": 1e6},
            {"address": OTHER_CONTRIBUTOR, "weight": 1e-6},
        ],
    }
    response = await client.post("/api/v1/models/register", json=body, headers=auth(admin_key))
    problem = assert_problem(response, 422, "validation_failed")
    assert ["body", "contributors", 1, "weight"] in [e["loc"] for e in problem["errors"]]
    assert "0 of 10000 basis points" in problem["detail"]
