"""Contributors: who contributed what, and the gains attested to them, summed exactly (the
addresses and basis points themselves: `app/rules/contributors.py`).

Rules: docs/reference/specification.md#contributors."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.vocabulary import Basis
from app.db.repositories.contributors import ContributionRepository, ModelGroup
from app.rules.contributors import TOTAL_BPS, checksummed, normalize_address
from app.rules.deltas import rounded
from app.schemas.contributors import (
    Contribution,
    ContributorSummary,
    Gains,
    Impact,
    ModelImpact,
)


def _totals(groups: Iterable[ModelGroup]) -> Gains:
    """The sums over some (model, basis) groups of an address's contributions, exactly."""
    parts = list(groups)
    return Gains(
        contributions=sum(g.versions for g in parts),
        deltaone_accepted=sum(g.accepted for g in parts),
        weighted_gain_pp=_pp(sum((Decimal(str(g.weighted)) for g in parts), Decimal(0))),
        accepted_weighted_gain_pp=_pp(
            sum((Decimal(str(g.accepted_weighted)) for g in parts), Decimal(0))
        ),
    )


def _pp(weighted: Decimal | float | int) -> float:
    """Σ gain_pp x bps, divided by 10000 and rounded half-even to 6 places, exactly."""
    return rounded(Decimal(str(weighted)) / TOTAL_BPS)


class ContributorService:
    def __init__(self, session: AsyncSession) -> None:
        self.contributions = ContributionRepository(session)

    async def impact(self, address: str) -> Impact:
        """What an address's contributions achieved, measured and claimed apart; an address
        never seen has zero impact."""
        stored = normalize_address(address)
        groups = await self.contributions.impact_by_model(stored)
        by_model: dict[str, list[ModelGroup]] = {}
        for group in groups:
            by_model.setdefault(group.model, []).append(group)
        total = _totals(groups)
        return Impact(
            address=checksummed(stored),
            contributions=total.contributions,
            models_improved=len(by_model),
            deltaone_accepted=total.deltaone_accepted,
            weighted_gain_pp=total.weighted_gain_pp,
            accepted_weighted_gain_pp=total.accepted_weighted_gain_pp,
            measured=_totals(g for g in groups if g.basis == Basis.MEASURED),
            claimed=_totals(g for g in groups if g.basis != Basis.MEASURED),
            first_contribution_at=min((g.first for g in groups), default=None),
            last_contribution_at=max((g.last for g in groups), default=None),
            models=[
                ModelImpact(
                    model=model,
                    versions=sum(g.versions for g in parts),
                    weighted_gain_pp=_totals(parts).weighted_gain_pp,
                    deltaone_accepted=sum(g.accepted for g in parts),
                    measured=_totals(g for g in parts if g.basis == Basis.MEASURED),
                    claimed=_totals(g for g in parts if g.basis != Basis.MEASURED),
                )
                for model, parts in by_model.items()
            ],
            attestation_ids=await self.contributions.attestation_ids(stored),
        )

    async def list_contributors(
        self, *, limit: int, offset: int
    ) -> tuple[list[ContributorSummary], int]:
        rows, total = await self.contributions.leaders(limit=limit, offset=offset)
        return [
            ContributorSummary(
                address=checksummed(row.address),
                contributions=row.contributions,
                models_improved=row.models,
                deltaone_accepted=row.accepted,
                measured_accepted_gain_pp=_pp(row.measured),
                claimed_accepted_gain_pp=_pp(row.claimed),
                last_contribution_at=row.last,
            )
            for row in rows
        ], total

    async def contributions_of(
        self, address: str, *, limit: int, offset: int
    ) -> tuple[list[Contribution], int]:
        rows, total = await self.contributions.page(
            normalize_address(address), limit=limit, offset=offset
        )
        return [
            Contribution(
                model=row.model,
                version=row.version,
                weight_bps=row.weight_bps,
                gain_pp=float(row.gain_pp) if row.gain_pp is not None else None,
                deltaone_accepted=row.deltaone_accepted,
                basis=row.basis,
                attestation_id=row.attestation_id,
                created_at=row.created_at,
            )
            for row in rows
        ], total
