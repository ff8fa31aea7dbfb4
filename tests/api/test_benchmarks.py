"""Held benchmarks through the API, on the real stack: the `benchmark` scope uploads, reads the
bytes back and retires; every other key sees the summary only, never a row or a label; bad files
are refused with a clear error and leave nothing behind."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import numpy as np
import pandas as pd
from hokusai import dataset_hash

from app.core.config import Settings
from tests.api.test_errors import assert_problem
from tests.conftest import auth, create_key, serve


def frame(rows: int = 200, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(rng.random((rows, 3)), columns=["f0", "f1", "f2"])
    return features.assign(label=(features["f0"] + features["f1"] > 1).astype(int))


def csv_bytes(data: pd.DataFrame) -> bytes:
    return data.to_csv(index=False).encode()


def parquet_bytes(data: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    data.to_parquet(buffer, index=False)
    return buffer.getvalue()


async def upload(
    client: httpx.AsyncClient, key: str, content: bytes, label: str = "label", name: str = "b.csv"
) -> httpx.Response:
    return await client.post(
        "/api/v1/benchmarks",
        data={"label_column": label},
        files={"file": (name, content, "application/octet-stream")},
        headers=auth(key),
    )


async def test_a_benchmark_key_holds_a_file_by_its_hash_and_reads_it_back(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    owner = (await create_key(client, admin_key, "benchmark"))["key"]
    content = csv_bytes(frame())
    created = await upload(client, owner, content)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["hash"] == dataset_hash(content)
    assert (body["format"], body["rows"], body["label_column"]) == ("csv", 200, "label")
    assert body["columns"] == [
        {"name": "f0", "type": "double"},
        {"name": "f1", "type": "double"},
        {"name": "f2", "type": "double"},
        {"name": "label", "type": "long"},
    ]
    counts = frame()["label"].value_counts()
    assert body["label_distribution"] == [
        {"label": 0, "count": int(counts[0])},
        {"label": 1, "count": int(counts[1])},
    ]
    again = await upload(client, owner, content)
    assert again.status_code == 200
    assert again.json()["hash"] == body["hash"]
    file = await client.get(f"/api/v1/benchmarks/{body['hash']}/file", headers=auth(owner))
    assert file.status_code == 200
    assert file.content == content
    parquet = await upload(client, owner, parquet_bytes(frame(seed=4)), name="b.parquet")
    assert parquet.status_code == 201, parquet.text
    assert (parquet.json()["format"], parquet.json()["rows"]) == ("parquet", 200)
    listed = await client.get("/api/v1/benchmarks", headers=auth(owner))
    assert listed.json()["total"] == 2
    retired = await client.post(f"/api/v1/benchmarks/{body['hash']}/retire", headers=auth(owner))
    assert retired.status_code == 200
    assert retired.json()["retired_at"] is not None


async def test_a_contributor_sees_the_summary_and_never_a_row(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    owner = (await create_key(client, admin_key, "benchmark"))["key"]
    contributor = (await create_key(client, admin_key, "read", "write", "predict"))["key"]
    content = csv_bytes(frame())
    digest = (await upload(client, owner, content)).json()["hash"]
    assert_problem(await upload(client, contributor, csv_bytes(frame(seed=9))), 403, "forbidden")
    refused = await client.get(f"/api/v1/benchmarks/{digest}/file", headers=auth(contributor))
    assert_problem(refused, 403, "forbidden")
    assert_problem(
        await client.post(f"/api/v1/benchmarks/{digest}/retire", headers=auth(contributor)),
        403,
        "forbidden",
    )
    summary = await client.get(f"/api/v1/benchmarks/{digest}", headers=auth(contributor))
    assert summary.status_code == 200
    listed = await client.get("/api/v1/benchmarks", headers=auth(contributor))
    row = frame().iloc[0]
    for answer in (summary, listed, refused):
        for value in (row["f0"], row["f1"]):  # no feature value of any row appears
            assert repr(float(value))[:12] not in answer.text
    unknown = await client.get("/api/v1/benchmarks/sha256:" + "0" * 64, headers=auth(owner))
    assert_problem(unknown, 404, "benchmark_not_found")


async def test_bad_files_are_refused_and_leave_nothing_behind(
    make_settings: Callable[..., Settings], admin_key: str
) -> None:
    settings = make_settings(benchmark_max_rows=500, benchmark_max_bytes=64 * 1024)
    async with serve(settings) as client:
        owner = (await create_key(client, admin_key, "benchmark"))["key"]
        with_nan = frame().astype({"label": float})
        with_nan.loc[7, "label"] = np.nan
        bomb = pd.DataFrame({"f0": np.zeros(50_000), "label": np.zeros(50_000, dtype=int)})
        cases: list[tuple[bytes, str, int, str, str]] = [
            (csv_bytes(frame()), "target", 422, "invalid_benchmark", "No label column 'target'"),
            (csv_bytes(with_nan), "label", 422, "invalid_benchmark", "1 rows have no label"),
            (b"\x00\x01\x02 not a table \xff" * 10, "label", 422, "invalid_benchmark", ""),
            (b"PAR1 truncated", "label", 422, "invalid_benchmark", "Parquet"),
            (csv_bytes(frame(3000)), "label", 413, "benchmark_too_large", "bytes"),
            (parquet_bytes(bomb), "label", 413, "benchmark_too_large", "50000 rows"),
            (
                csv_bytes(frame().assign(when=pd.Timestamp("2026-01-01")).astype({"when": str})),
                "",
                422,
                "validation_failed",
                "",
            ),
        ]
        for content, label, status, code, says in cases:
            response = await upload(client, owner, content, label)
            assert_problem(response, status, code)
            assert says in response.json()["detail"]
        listed = await client.get("/api/v1/benchmarks", headers=auth(owner))
    assert listed.json()["total"] == 0


async def test_only_a_multipart_body_is_a_benchmark(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    response = await client.post(
        "/api/v1/benchmarks", json={"label_column": "label"}, headers=auth(admin_key)
    )
    assert_problem(response, 415, "unsupported_media_type")


async def test_a_label_column_name_with_nul_or_past_250_characters_is_refused(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    content = csv_bytes(frame())
    for label in ("lab\x00el", "x" * 251):
        response = await upload(client, admin_key, content, label)
        assert_problem(response, 422, "validation_failed")
    listed = await client.get("/api/v1/benchmarks", headers=auth(admin_key))
    assert listed.json()["total"] == 0
