"""Held benchmarks: datasets the service stores and measures versions on. A file is read (never
run) here, checked against the size limits before its rows are, and stored under its own path in
the artifact store; its id is the SHA-256 of its bytes, as `hokusai.dataset_hash` computes it.
Rows and labels leave only through `file`, which the router gives to the `benchmark` scope.

Rules: docs/reference/specification.md#held-benchmarks."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hokusai import measure
from sqlalchemy.ext.asyncio import AsyncSession

from app.adapters.registry import Registry
from app.core.config import Settings
from app.core.errors import BenchmarkNotFound, BenchmarkTooLarge, InvalidBenchmark, first_line
from app.core.security import Principal
from app.db.base import utcnow
from app.db.models import Benchmark
from app.db.repositories.benchmarks import BenchmarkRepository
from app.db.session import end_reads

PARQUET_MAGIC = b"PAR1"
# A Parquet file may unpack to at most this many times the largest file: a Parquet bomb stops here.
UNPACKED_RATIO = 10
DISTINCT_LABELS_LISTED = 50


@dataclass(frozen=True)
class Summary:
    format: str
    rows: int
    columns: list[dict[str, str]]
    label_distribution: list[dict[str, Any]]


class BenchmarkService:
    def __init__(self, session: AsyncSession, registry: Registry, settings: Settings) -> None:
        self.session = session
        self.benchmarks = BenchmarkRepository(session)
        self.registry = registry
        self.settings = settings

    async def upload(
        self, file: Path, digest: str, label_column: str, actor: Principal
    ) -> tuple[Benchmark, bool]:
        """The benchmark of this file (`digest`: `sha256:` of its bytes, taken as it was
        written), and whether it is new (the same bytes again answer the benchmark held)."""
        existing = await self.benchmarks.get(digest)
        if existing is not None:
            return existing, False
        await end_reads(self.session)  # what follows reads the file and writes to MLflow
        summary = await asyncio.to_thread(
            summarize,
            file,
            label_column,
            max_rows=self.settings.benchmark_max_rows,
            max_columns=self.settings.benchmark_max_columns,
            max_unpacked=self.settings.benchmark_max_bytes * UNPACKED_RATIO,
        )
        named = file.with_name(f"benchmark.{summary.format}")
        shutil.move(file, named)
        uri = await self.registry.store_benchmark(named, digest)
        benchmark = Benchmark(
            hash=digest,
            format=summary.format,
            rows=summary.rows,
            size_bytes=named.stat().st_size,
            columns=summary.columns,
            label_column=label_column,
            label_distribution=summary.label_distribution,
            storage_uri=uri,
            created_by=actor.name,
            created_at=utcnow(),
        )
        return await self.benchmarks.add(benchmark), True

    async def get(self, digest: str) -> Benchmark:
        benchmark = await self.benchmarks.get(digest)
        if benchmark is None:
            raise BenchmarkNotFound(f"No benchmark {digest}")
        return benchmark

    async def list(self, *, limit: int, offset: int) -> tuple[Sequence[Benchmark], int]:
        return await self.benchmarks.page(limit=limit, offset=offset)

    async def retire(self, digest: str) -> Benchmark:
        benchmark = await self.get(digest)
        if benchmark.retired_at is None:
            benchmark.retired_at = utcnow()
        return benchmark

    async def file(self, benchmark: Benchmark, workdir: Path) -> Path:
        """The benchmark's bytes, downloaded into `workdir` and checked against its hash. Runs
        outside any transaction (the download may be slow)."""
        await end_reads(self.session)
        digest = benchmark.hash
        name = f"benchmark.{benchmark.format}"
        path = await self.registry.fetch_benchmark(benchmark.storage_uri, name, workdir)
        if await asyncio.to_thread(file_hash, path) != digest:
            raise BenchmarkNotFound(f"The stored file of {digest} no longer has that hash")
        return path


def file_hash(path: Path) -> str:
    total = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            total.update(chunk)
    return "sha256:" + total.hexdigest()


def summarize(
    path: Path, label_column: str, *, max_rows: int, max_columns: int, max_unpacked: int
) -> Summary:
    """What anyone may see of a benchmark file; InvalidBenchmark or BenchmarkTooLarge when it
    is not one the service can measure on."""
    with path.open("rb") as handle:
        parquet = handle.read(4) == PARQUET_MAGIC
    frame = (
        _read_parquet(path, max_rows, max_columns, max_unpacked)
        if parquet
        else _read_csv(path, max_rows, max_columns)
    )
    if label_column not in frame.columns:
        raise InvalidBenchmark(
            f"No label column {label_column!r}; the columns are "
            + ", ".join(map(str, list(frame.columns)[:20]))
        )
    if len(frame.columns) < 2:
        raise InvalidBenchmark("A benchmark needs at least one feature column beside the label")
    if len(frame) == 0:
        raise InvalidBenchmark("The benchmark has no rows")
    labels = frame[label_column]
    missing = int(labels.isna().sum())
    if missing:
        raise InvalidBenchmark(f"{missing} rows have no label (null or NaN)")
    columns = []
    for name in frame.columns:
        kind = _kind(frame[name])
        if kind is None:
            raise InvalidBenchmark(
                f"Column {name!r} holds {frame[name].dtype}: only numbers, booleans and text"
            )
        columns.append({"name": str(name), "type": kind})
    return Summary(
        format="parquet" if parquet else "csv",
        rows=len(frame),
        columns=columns,
        label_distribution=_distribution(labels),
    )


def read_table(path: Path, format: str) -> Any:
    """A held benchmark's rows (its file was checked when it was uploaded), read as
    `hokusai verify --recompute` reads it."""
    return measure.read_benchmark(path, format)


def _read_parquet(path: Path, max_rows: int, max_columns: int, max_unpacked: int) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(path).metadata
    except (pa.ArrowException, OSError) as exc:
        raise InvalidBenchmark(f"Not a readable Parquet file: {first_line(exc)}") from exc
    unpacked = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if metadata.num_rows > max_rows:
        raise BenchmarkTooLarge(f"{metadata.num_rows} rows; at most {max_rows}")
    if metadata.num_columns > max_columns:
        raise BenchmarkTooLarge(f"{metadata.num_columns} columns; at most {max_columns}")
    if unpacked > max_unpacked:
        raise BenchmarkTooLarge(f"{unpacked} bytes unpacked; at most {max_unpacked}")
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidBenchmark(f"Not a readable Parquet file: {first_line(exc)}") from exc


def _read_csv(path: Path, max_rows: int, max_columns: int) -> Any:
    import pandas as pd

    try:
        header = pd.read_csv(path, nrows=0)
        if len(header.columns) > max_columns:
            raise BenchmarkTooLarge(f"{len(header.columns)} columns; at most {max_columns}")
        frame = pd.read_csv(path, nrows=max_rows + 1)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InvalidBenchmark(f"Not a readable CSV file: {first_line(exc)}") from exc
    if len(frame) > max_rows:
        raise BenchmarkTooLarge(f"More than {max_rows} rows")
    return frame


def _kind(column: Any) -> str | None:
    import pandas as pd

    if pd.api.types.is_bool_dtype(column):
        return "boolean"
    if pd.api.types.is_integer_dtype(column):
        return "long"
    if pd.api.types.is_float_dtype(column):
        return "double"
    if pd.api.types.is_string_dtype(column) or pd.api.types.is_object_dtype(column):
        values = column.dropna()
        return "string" if all(isinstance(v, str) for v in values) else None
    return None


def _distribution(labels: Any) -> list[dict[str, Any]]:
    """Counts per label for a few distinct labels, else five quantiles: what a contributor may
    know of the labels, never a row."""
    counts = labels.value_counts()
    if len(counts) <= DISTINCT_LABELS_LISTED:
        return [
            {"label": _plain(label), "count": int(count)}
            for label, count in sorted(counts.items(), key=lambda item: str(item[0]))
        ]
    quantiles = labels.astype(float).quantile([0, 0.25, 0.5, 0.75, 1])
    return [{"quantile": float(q), "value": float(v)} for q, v in quantiles.items()]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
