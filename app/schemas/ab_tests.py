from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from typing_extensions import TypedDict

from app.core.vocabulary import AbTestStatus, MetricDirection, MetricKind, Verdict
from app.schemas.common import (
    Name,
    Page,
    PositiveInteger,
    Schema,
    Time,
    UnitId,
    VersionNumber,
)
from app.schemas.ml_models import CLOSED, AliasName, MetricName, ModelName, Request
from app.schemas.predictions import Inputs

VariantName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Weight = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


def _in_the_future(moment: datetime) -> datetime:
    if moment.tzinfo is None:  # RFC 3339 without an offset: UTC, as every time here
        moment = moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise ValueError("must be in the future")
    return moment


EndsAt = Annotated[Time, AfterValidator(_in_the_future)]


class MetricSpec(Request):
    name: MetricName
    kind: MetricKind
    direction: MetricDirection = MetricDirection.HIGHER_IS_BETTER


class VariantIn(Request):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [  # exactly one of `version` and `alias`
                {
                    "required": ["version"],
                    "properties": {"version": {"type": "integer"}, "alias": {"type": "null"}},
                },
                {
                    "required": ["alias"],
                    "properties": {"alias": {"type": "string"}, "version": {"type": "null"}},
                },
            ]
        },
    )

    name: VariantName
    version: VersionNumber | None = None
    alias: AliasName | None = Field(None, description="Resolved to a version when the test starts")
    weight: Weight

    @model_validator(mode="after")
    def _one_target(self) -> VariantIn:
        if (self.version is None) == (self.alias is None):
            raise ValueError("give a version or an alias")
        return self


def _weights_sum_to_one(weights: list[float]) -> None:
    if not math.isclose(sum(weights), 1.0, abs_tol=1e-9):
        raise ValueError(f"weights must sum to 1, not {sum(weights)}")


class AbTestCreate(Request):
    name: Annotated[Name, StringConstraints(min_length=1, max_length=128)]
    model: ModelName
    variants: list[VariantIn] = Field(
        min_length=2, max_length=20, description="First is the control"
    )
    unit: Annotated[Name, StringConstraints(min_length=1, max_length=64)] = "user_id"
    metric: MetricSpec
    minimum_sample_size: PositiveInteger = 100
    confidence_level: float = Field(0.95, gt=0.5, lt=1)
    ends_at: EndsAt | None = Field(None, description="In the future")
    webhook_url: AnyHttpUrl | None = None

    @model_validator(mode="after")
    def _variants(self) -> AbTestCreate:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names repeat")
        targets = [(v.version, v.alias) for v in self.variants]
        if len(set(targets)) != len(targets):
            raise ValueError("variants repeat a version or alias")
        _weights_sum_to_one([v.weight for v in self.variants])
        return self


class AbTestUpdate(Request):
    weights: Annotated[dict[VariantName, Weight], Field(json_schema_extra=CLOSED)] | None = Field(
        None, description="Every variant's new weight"
    )
    ends_at: EndsAt | None = Field(None, description="In the future")

    @model_validator(mode="after")
    def _sum(self) -> AbTestUpdate:
        if self.weights is not None:
            _weights_sum_to_one(list(self.weights.values()))
        return self


class VariantRead(Schema):
    name: str
    version: int | None
    alias: str | None
    weight: float


class AbTestRead(BaseModel):
    id: uuid.UUID
    name: str
    model: str
    status: AbTestStatus
    variants: list[VariantRead]
    unit: str
    metric: MetricSpec
    minimum_sample_size: int
    confidence_level: float
    ends_at: datetime | None
    webhook_url: str | None
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    winner: str | None


class AssignRequest(Request):
    unit_id: UnitId


class Assignment(BaseModel):
    test_id: uuid.UUID
    unit_id: str
    variant: str
    version: int


class AbPredictRequest(Request):
    unit_id: UnitId
    inputs: Inputs


class Outcome(TypedDict):
    """A TypedDict, not a model: batches hold 10,000 of them, and dicts validate much faster."""

    unit_id: UnitId
    value: Annotated[float, Field(allow_inf_nan=False)]


class OutcomesRequest(Request):
    events: list[Outcome] = Field(min_length=1, max_length=10_000)


class OutcomesAccepted(BaseModel):
    accepted: int = Field(description="Events of exposed units, counted")
    ignored: int = Field(description="Events of units never exposed to the test, not counted")


class Srm(BaseModel):
    p_value: float | None
    flagged: bool


class VariantResult(BaseModel):
    name: str
    version: int | None
    weight: float
    exposures: int
    n: int
    mean: float | None
    std: float | None
    ci_low: float | None = Field(description="The mean's interval at the test's confidence level")
    ci_high: float | None


class ComparisonResult(BaseModel):
    variant: str
    control: str
    absolute_lift: float | None
    relative_lift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    chance_to_beat_control: float | None
    significant: bool


class Results(BaseModel):
    test_id: uuid.UUID
    status: AbTestStatus
    metric: MetricSpec
    verdict: Verdict
    srm: Srm
    variants: list[VariantResult]
    comparisons: list[ComparisonResult]


class Promote(Request):
    variant: VariantName
    force: bool = False


class AbTestPage(Page[AbTestRead]):
    """A page of A/B tests."""
