from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.core.vocabulary import MetricDirection
from app.schemas.common import Page, VersionNumber
from app.schemas.ml_models import MetricComparison, MetricName, ModelName, Request


class ExperimentRead(BaseModel):
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    tags: dict[str, str]
    created_at: datetime | None


class RunRead(BaseModel):
    run_id: str
    run_name: str | None
    experiment_id: str
    status: str
    start_time: datetime | None
    end_time: datetime | None
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]


RunId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


class RunCompare(Request):
    """Compare a candidate run against a baseline run, or against a registered version."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [  # a baseline run, or a model and its version
                {
                    "required": ["baseline_run_id"],
                    "properties": {
                        "baseline_run_id": {"type": "string"},
                        "model": {"type": "null"},
                        "version": {"type": "null"},
                    },
                },
                {
                    "required": ["model", "version"],
                    "properties": {
                        "model": {"type": "string"},
                        "version": {"type": "integer"},
                        "baseline_run_id": {"type": "null"},
                    },
                },
            ]
        },
    )

    candidate_run_id: RunId
    baseline_run_id: RunId | None = None
    model: ModelName | None = Field(
        None, description="With `version`: compare against that version"
    )
    version: VersionNumber | None = None
    metric: MetricName | None = Field(None, description="The primary metric (default: all shared)")
    direction: MetricDirection | None = Field(None, description="Of `metric`; default by its name")

    @model_validator(mode="after")
    def _one_baseline(self) -> RunCompare:
        by_run = self.baseline_run_id is not None
        by_version = self.model is not None or self.version is not None
        if by_run == by_version or (by_version and (self.model is None or self.version is None)):
            raise ValueError("give baseline_run_id, or model and version, not both")
        return self


class RunComparison(BaseModel):
    baseline: str = Field(description="run id, or models:/<name>/<version>")
    candidate: str
    primary_metric: str | None
    metrics: dict[str, MetricComparison]


class ExperimentPage(Page[ExperimentRead]):
    """A page of MLflow experiments."""


class RunPage(Page[RunRead]):
    """A page of MLflow runs."""
