from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from app.core.vocabulary import Basis, VersionKind
from app.schemas.ml_models import ContributorRead


class LineageDirection(StrEnum):
    ANCESTORS = "ancestors"
    DESCENDANTS = "descendants"
    BOTH = "both"


class LineageFormat(StrEnum):
    JSON = "json"
    MERMAID = "mermaid"
    DOT = "dot"


class LineageNode(BaseModel):
    version: int
    kind: VersionKind
    primary_metric_value: float | None
    deltaone_accepted: bool | None
    attestation_id: str | None
    created_at: datetime


class LineageEdge(BaseModel):
    parent: int
    child: int
    gain_pp: float | None
    deltaone_accepted: bool | None
    reason: str | None
    basis: Basis | None = Field(description="How the gain was obtained: measured or claimed")
    contributors: list[ContributorRead]
    attestation_id: str | None


class Lineage(BaseModel):
    model: str
    version: int | None = Field(description="The version asked about; null for the whole graph")
    primary_metric: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    cumulative_gain_pp: float | None = Field(
        description="LineageDirection-aware gain from the root baseline to `version` on the "
        "primary "
        "metric: percentage points for proportions, percent of the root's value otherwise"
    )
