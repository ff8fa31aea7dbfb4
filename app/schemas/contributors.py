from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.schemas.common import Page


class ModelImpact(BaseModel):
    model: str
    versions: int
    weighted_gain_pp: float
    deltaone_accepted: int


class Impact(BaseModel):
    address: str = Field(description="EIP-55 checksummed")
    contributions: int
    models_improved: int
    deltaone_accepted: int
    weighted_gain_pp: float = Field(description="Sum of gain_pp x bps / 10000 over contributions")
    accepted_weighted_gain_pp: float = Field(description="The same, over accepted DeltaOnes only")
    first_contribution_at: datetime | None
    last_contribution_at: datetime | None
    models: list[ModelImpact]
    attestation_ids: list[str]


class Contribution(BaseModel):
    model: str
    version: int
    weight_bps: int
    gain_pp: float | None
    deltaone_accepted: bool | None
    attestation_id: str | None
    created_at: datetime


class ContributionPage(Page[Contribution]):
    """A page of a contributor's contributions."""
