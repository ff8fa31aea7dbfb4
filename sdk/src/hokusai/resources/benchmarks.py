"""Held benchmarks: datasets the service keeps and measures improvements on. Uploading, reading
the file back and retiring need a key with the `benchmark` scope; any key with `read` sees the
summaries (never a row)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from hokusai._base import Call, Page, model, path, query
from hokusai._resource import C, Resource, method, page_of, paged
from hokusai.types import BenchmarkRead


def upload(data: Any, label_column: str, *, filename: str | None = None) -> Call[BenchmarkRead]:
    """Hold `data` (a Parquet or CSV file's path or bytes, or a pandas DataFrame, sent as CSV)
    with `label_column` as its labels. The same bytes again answer the benchmark already held;
    its `hash` is `hokusai.dataset_hash` of those bytes."""
    if isinstance(data, bytes | bytearray):
        content, name = bytes(data), filename or "benchmark"
    elif isinstance(data, str | os.PathLike):
        content, name = Path(data).read_bytes(), filename or Path(data).name
    elif hasattr(data, "to_csv"):
        content = data.to_csv(index=False, lineterminator="\n").encode("utf-8")
        name = filename or "benchmark.csv"
    else:
        raise TypeError(f"upload takes a path, bytes or a DataFrame, not {type(data).__name__}")
    return Call(
        "POST",
        path("benchmarks"),
        model(BenchmarkRead),
        repeatable=True,  # content-addressed: sending it again holds nothing twice
        data={"label_column": label_column},
        files={"file": (name, content, "application/octet-stream")},
    )


def get(benchmark_hash: str) -> Call[BenchmarkRead]:
    """One benchmark's summary: hash, format, rows, columns, label column and distribution."""
    return Call("GET", path("benchmarks", benchmark_hash), model(BenchmarkRead), repeatable=True)


def list_benchmarks(offset: int) -> Call[Page[BenchmarkRead]]:
    """Held benchmarks, newest first."""
    return Call(
        "GET",
        path("benchmarks"),
        page_of(BenchmarkRead),
        params=query(limit=500, offset=offset),
        repeatable=True,
    )


def file(benchmark_hash: str) -> Call[bytes]:
    """The benchmark's bytes (the `benchmark` scope only)."""

    def content(response: httpx.Response) -> bytes:
        return response.content

    return Call("GET", path("benchmarks", benchmark_hash, "file"), content, repeatable=True)


def retire(benchmark_hash: str) -> Call[BenchmarkRead]:
    """Name it in no new baseline (what was measured on it stays); the `benchmark` scope."""
    return Call(
        "POST", path("benchmarks", benchmark_hash, "retire"), model(BenchmarkRead), repeatable=True
    )


class Benchmarks(Resource[C]):
    upload = method(upload)
    get = method(get)
    list = paged(list_benchmarks)
    file = method(file)
    retire = method(retire)
