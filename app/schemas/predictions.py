from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, PlainValidator
from pydantic_core import PydanticCustomError

from app.schemas.common import UnitId, VersionNumber
from app.schemas.ml_models import AliasName, Request


def _rows(value: Any) -> Any:
    """Rows as parsed, without a copy of every row (validating them as `Rows` would rebuild each
    row's dict: a third of a large batch's parsing); the prediction service checks that every
    row is an object (`check_rows`)."""
    if type(value) is dict or type(value) is list:
        return value
    raise PydanticCustomError(
        "rows_type", "Input should be an object (one row) or a list of objects (a batch)"
    )


Rows = dict[str, Any] | list[dict[str, Any]]
Inputs = Annotated[Rows, PlainValidator(_rows, json_schema_input_type=Rows)]


class PredictRequest(Request):
    inputs: Inputs = Field(
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
