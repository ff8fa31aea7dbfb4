from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.schemas.common import UnitId, VersionNumber
from app.schemas.ml_models import AliasName, Request


class PredictRequest(Request):
    inputs: dict[str, Any] | list[dict[str, Any]] = Field(
        description="One row (an object) or a batch (a list of objects)",
        examples=[{"company_size": 120, "industry": "saas"}],
    )
    version: VersionNumber | None = None
    alias: AliasName | None = None
    unit_id: UnitId | None = Field(None, description="Routes through a running A/B test")


class CacheCounts(BaseModel):
    hits: int
    misses: int


class AbTestAssignment(BaseModel):
    id: str
    variant: str


class Prediction(BaseModel):
    model: str
    version: int
    predictions: list[Any]
    cache: CacheCounts
    ab_test: AbTestAssignment | None = None
