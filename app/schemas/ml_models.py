"""Request and response shapes of the models, versions, aliases and compare endpoints."""

from __future__ import annotations

import posixpath
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from app.core.vocabulary import Basis, Family, MetricDirection, ModelType, VersionKind
from app.rules.deltas import MetricDelta
from app.schemas.common import ADDRESS, Page, PositiveInteger, Schema, Text, VersionNumber

MODEL_NAME = r"^[a-z0-9][a-z0-9._-]{0,127}$"
TOKEN_ID = r"^[A-Z0-9](?:[A-Z0-9-]{0,62}[A-Z0-9])?$"  # noqa: S105  # a pattern, not a secret
ALIAS = r"^[a-z][a-z0-9_-]{0,63}$"
DATASET_HASH = r"^sha256:[0-9a-f]{64}$"
SOURCE_URI = r"^(runs:/|models:/|mlflow-artifacts:/)\S+$"
MAX_CONTRIBUTORS = 256

ModelName = Annotated[str, StringConstraints(pattern=MODEL_NAME)]
AliasName = Annotated[str, StringConstraints(pattern=ALIAS)]


def _mlflow_key(name: str) -> str:
    """MLflow stores metric names and tag keys as paths too: one that would resolve to another
    name (`a//b`, `./a`, `/a`, `..`) is refused there, so it is refused here first."""
    normal = posixpath.normpath(name)
    if normal != name or normal == "." or normal.startswith(("..", "/")):
        raise ValueError(f"must not read as another path ({normal!r})")
    return name


# Metric names and tag keys: ASCII letters, digits, `_ . - : /` and spaces (MLflow's rule, in
# ASCII), as a path that reads as itself. The server checks the path part in Python
# (`_mlflow_key`); the document states the whole rule in one ECMA pattern (lookaheads).
MLFLOW_KEY_DOCUMENTED = (
    r"^(?!\.\.)(?!\.(/|$))(?!.*/\.\.?(/|$))[A-Za-z0-9_.: -]+(/[A-Za-z0-9_.: -]+)*$"
)
MlflowKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=250, pattern=r"^[A-Za-z0-9_.:/ -]+$"),
    AfterValidator(_mlflow_key),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": 250, "pattern": MLFLOW_KEY_DOCUMENTED}
    ),
]
MetricName = MlflowKey
TagKey = MlflowKey
TagValue = Annotated[Text, StringConstraints(max_length=5000)]
# Keys outside the pattern are refused, so the map is closed (pydantic alone would emit
# `patternProperties`, which lets any other key through).
CLOSED: dict[str, Any] = {"additionalProperties": False}
Tags = Annotated[dict[TagKey, TagValue], Field(max_length=100, json_schema_extra=CLOSED)]
# Strict: JSON `true` is not a number; NaN and infinity are refused.
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
# A metric's value: finite and at most 1e300 in size, so that differences, ratios and percentage
# points of any two stay finite.
MetricValue = Annotated[Finite, Field(ge=-1e300, le=1e300)]
Description = Annotated[Text, StringConstraints(max_length=5000)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Benchmark(Request):
    metric: MetricName
    direction: MetricDirection
    family: Family


class Dataset(Request):
    hash: Annotated[str, StringConstraints(pattern=DATASET_HASH)]
    num_samples: PositiveInteger


class ContributorWeight(Request):
    address: Annotated[Text, StringConstraints(max_length=256)] = Field(
        examples=["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"],
        # Checked by the service: 422 `invalid_address` (EIP-55 on mixed case), naming the field.
        json_schema_extra={"pattern": ADDRESS},
    )
    weight: Finite = Field(
        ge=1e-6,
        le=1e6,
        description="Relative share; every contributor named must get at least 1 basis point",
    )


class VersionMetadata(Request):
    """A version to register; the multipart form's `metadata` part (the artifact is a file part)."""

    name: ModelName
    kind: VersionKind
    model_type: ModelType | None = Field(
        None, description="Required for a new model; must match afterwards"
    )
    token_id: Annotated[str, StringConstraints(pattern=TOKEN_ID)] | None = Field(
        None, description="Hokusai token ticker; upper-cased, unique"
    )
    description: Description | None = None
    tags: Tags = Field(default_factory=dict)
    metrics: dict[MetricName, MetricValue] = Field(
        min_length=1, max_length=1000, json_schema_extra=CLOSED
    )
    metric_stds: dict[MetricName, Annotated[MetricValue, Field(ge=0)]] = Field(
        default_factory=dict, json_schema_extra=CLOSED
    )
    benchmark: Benchmark | None = Field(
        None, description="Required for the first baseline of a model; baselines may re-declare"
    )
    dataset: Dataset
    parent_version: VersionNumber | None = None
    contributors: list[ContributorWeight] | None = Field(None, max_length=MAX_CONTRIBUTORS)

    @field_validator("token_id", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value.isascii():  # Unicode casing would turn `ß` into `SS`
            raise ValueError("must be ASCII letters, digits and dashes")
        return value.upper()

    @model_validator(mode="after")
    def _kind_rules(self) -> VersionMetadata:
        if self.kind == VersionKind.BASELINE:
            if self.contributors:
                raise ValueError("contributors belong to improved versions only")
            if self.parent_version is not None:
                raise ValueError("a baseline has no parent_version")
        else:
            if not self.contributors:
                raise ValueError("an improved version needs 1 to 256 contributors")
            if self.benchmark is not None:
                raise ValueError("only baselines declare the benchmark")
        return self


class VersionRegister(VersionMetadata):
    """A version to register from an artifact already in MLflow (JSON form)."""

    source_uri: Annotated[str, StringConstraints(pattern=SOURCE_URI, max_length=2000)] = Field(
        examples=["runs:/0123456789abcdef/model"]
    )


class ArtifactRead(BaseModel):
    digest: str = Field(description="sha256 over the model's canonical file set")
    source_uri: str
    mlflow_run_id: str | None


class ContributorRead(BaseModel):
    address: str = Field(description="EIP-55 checksummed")
    weight_bps: int


class MetricDeltaRead(BaseModel):
    parent: float
    candidate: float
    absolute: float
    relative: float | None
    gain: float
    gain_pp: float | None


class DeltaOneRead(BaseModel):
    accepted: bool
    reason: str
    metric: str
    gain_pp: float | None
    ci_low_pp: float | None
    ci_high_pp: float | None
    n_parent: int
    n_candidate: int
    threshold_pp: float
    min_samples: int
    evaluated_at: datetime
    basis: Basis = Field(
        Basis.CLAIMED,
        description="measured: the service scored both versions on a held benchmark; claimed: "
        "the client's numbers",
    )
    measurement: dict[str, Any] | None = Field(
        None,
        description="On a held benchmark: the dataset, rows, metric function and arguments, both "
        "values, the gain, its paired-bootstrap interval, B, kept and skipped draws, the seed, "
        "the predictions' SHA-256 and the library versions",
    )


class SignatureColumn(BaseModel):
    name: str
    type: str = Field(description="MLflow's type: double, float, long, integer, boolean, string...")
    required: bool


class VersionRead(BaseModel):
    model: str
    version: int
    kind: VersionKind
    model_type: ModelType
    token_id: str | None
    description: str | None
    tags: dict[str, str]
    metrics: dict[str, float]
    metric_stds: dict[str, float]
    dataset: Dataset
    benchmark: Benchmark
    parent_version: int | None
    aliases: list[str]
    created_at: datetime
    artifact: ArtifactRead
    contributors: list[ContributorRead]
    delta: dict[str, MetricDeltaRead] | None
    deltaone: DeltaOneRead | None
    attestation_id: str | None
    archived_at: datetime | None = Field(
        None, description="When the version was archived; null when it is not"
    )
    signature: list[SignatureColumn] | None = Field(
        None,
        description="The input columns its MLmodel file declares (rows are checked against "
        "them); null when it declares none",
    )


class MlModelRead(BaseModel):
    name: str
    model_type: ModelType
    token_id: str | None
    description: str | None
    tags: dict[str, str]
    benchmark: Benchmark
    latest_version: int | None
    aliases: dict[str, int]
    require_measurement: bool = Field(
        description="Improvements not measured on a held benchmark are refused "
        "(`measurement_required`)"
    )
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = Field(
        None, description="When the model was archived; null when it is not"
    )


class DescriptionAndTags(Request):
    """Fields left out are unchanged; `tags` replaces the user tags."""

    description: Description | None = None
    tags: Tags | None = None


class ModelUpdate(DescriptionAndTags):
    """Fields left out are unchanged; `tags` replaces the user tags; `require_measurement` needs
    the `benchmark` scope."""

    require_measurement: StrictBool | None = None


class AliasSet(Request):
    version: VersionNumber
    reason: Description | None = None


class AliasRead(BaseModel):
    alias: str
    version: int
    updated_at: datetime


class AliasEventRead(Schema):
    alias: str
    from_version: int | None
    to_version: int | None
    reason: str | None
    actor: str
    at: datetime


class AliasAt(BaseModel):
    alias: str
    version: int | None = Field(description="null when the alias pointed nowhere then")
    at: datetime


class Rollback(Request):
    to_version: VersionNumber | None = None
    reason: Description | None = None


class MetricComparison(BaseModel):
    base: float
    candidate: float
    absolute: float
    relative: float | None
    gain: float
    better: Literal["base", "candidate", "equal"]

    @classmethod
    def of(cls, delta: MetricDelta) -> MetricComparison:
        """A delta as `compare` answers it: `base` where the lineage says parent."""
        return cls(
            base=delta.parent,
            candidate=delta.candidate,
            absolute=delta.absolute,
            relative=delta.relative,
            gain=delta.gain,
            better="base" if delta.better == "parent" else delta.better,
        )


class Comparison(BaseModel):
    model: str
    base: int
    candidate: int
    primary_metric: str
    metrics: dict[str, MetricComparison]


class ModelPage(Page[MlModelRead]):
    """A page of models."""


class VersionPage(Page[VersionRead]):
    """A page of a model's versions, newest first."""
