from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from app.schemas.common import Page, Schema


class BenchmarkColumn(Schema):
    name: str
    type: Literal["double", "long", "boolean", "string"]


class BenchmarkRead(Schema):
    """What any key with `read` sees of a held benchmark: never a row or a label."""

    hash: str = Field(description="`sha256:` + SHA-256 of the file's bytes (hokusai.dataset_hash)")
    format: Literal["csv", "parquet"]
    rows: int
    columns: list[BenchmarkColumn]
    label_column: str
    label_distribution: list[dict[str, Any]] = Field(
        description="Counts per label (`label`, `count`) when there are at most 50 distinct "
        "labels, else five quantiles (`quantile`, `value`)"
    )
    created_at: datetime
    retired_at: datetime | None


BenchmarkPage = Page[BenchmarkRead]
