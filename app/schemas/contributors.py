from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.core.vocabulary import Basis
from app.schemas.common import Page


class Gains(BaseModel):
    """Contributions whose gains were obtained one way: measured by the service on a held
    benchmark, or claimed by the client. Only measured gains carry an EIP-712 signature."""

    contributions: int
    deltaone_accepted: int
    weighted_gain_pp: float = Field(description="Sum of gain_pp x bps / 10000")
    accepted_weighted_gain_pp: float = Field(description="The same, over accepted DeltaOnes only")


class ModelImpact(BaseModel):
    model: str
    versions: int
    weighted_gain_pp: float
    deltaone_accepted: int
    measured: Gains
    claimed: Gains


class Impact(BaseModel):
    address: str = Field(description="EIP-55 checksummed")
    contributions: int
    models_improved: int
    deltaone_accepted: int
    weighted_gain_pp: float = Field(description="Sum of gain_pp x bps / 10000 over contributions")
    accepted_weighted_gain_pp: float = Field(description="The same, over accepted DeltaOnes only")
    first_contribution_at: datetime | None
    last_contribution_at: datetime | None
    measured: Gains = Field(description="What the service measured: what a payout counts")
    claimed: Gains = Field(description="What clients claimed, never measured")
    models: list[ModelImpact]
    attestation_ids: list[str]


class Contribution(BaseModel):
    model: str
    version: int
    weight_bps: int
    gain_pp: float | None
    deltaone_accepted: bool | None
    basis: Basis | None = Field(description="How the gain was obtained; null until judged")
    attestation_id: str | None
    created_at: datetime


class ContributorSummary(BaseModel):
    """One contributor in the list of all of them."""

    address: str = Field(description="EIP-55 checksummed")
    contributions: int
    models_improved: int
    deltaone_accepted: int
    measured_accepted_gain_pp: float = Field(
        description="Σ gain_pp x bps / 10000 over accepted contributions the service measured"
    )
    claimed_accepted_gain_pp: float = Field(description="The same over claimed ones")
    last_contribution_at: datetime


class ContributorPage(Page[ContributorSummary]):
    """Every contributor, the largest measured accepted gain first."""


class ContributionPage(Page[Contribution]):
    """A page of a contributor's contributions."""
