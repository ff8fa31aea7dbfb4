"""Contributors: Ethereum addresses checked with real EIP-55 (Keccak-256),
and weights turned into basis points that sum to exactly 10000 by the largest remainder.

Rules: docs/reference/specification.md#contributors."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from eth_utils.address import is_checksum_address, to_checksum_address
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import InvalidAddress
from app.db.repositories.contributors import ContributionRepository
from app.schemas.common import ADDRESS as ADDRESS_PATTERN
from app.schemas.contributors import Contribution, Impact, ModelImpact
from app.services.deltas import PLACES

TOTAL_BPS = 10_000
ADDRESS = re.compile(ADDRESS_PATTERN)


def normalize_address(address: str) -> str:
    """The lowercase form to store. All-lowercase or all-uppercase hex is taken as is; mixed case
    must be a valid EIP-55 checksum."""
    if not ADDRESS.match(address):
        raise InvalidAddress(f"{address!r} is not 0x followed by 40 hex digits")
    digits = address[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(address):
        raise InvalidAddress(f"{address!r} has mixed case but is not a valid EIP-55 checksum")
    return "0x" + digits.lower()


@functools.lru_cache(maxsize=65_536)
def checksummed(address: str) -> str:
    """EIP-55 form of a stored (lowercase) address; Keccak-256 is not free, and addresses repeat."""
    return str(to_checksum_address(address))


def basis_points(weights: Sequence[tuple[str, Decimal]]) -> dict[str, int]:
    """Largest remainder: floor each exact share of 10000, then one more point each to the largest
    fractional remainders, ties broken by address ascending. Exact rational arithmetic."""
    total = sum((Fraction(weight) for _, weight in weights), Fraction(0))
    shares = {address: Fraction(weight) * TOTAL_BPS / total for address, weight in weights}
    points = {address: int(share) for address, share in shares.items()}
    leftover = TOTAL_BPS - sum(points.values())
    by_remainder = sorted(shares, key=lambda address: (-(shares[address] % 1), address))
    for address in by_remainder[:leftover]:
        points[address] += 1
    return points


def _pp(weighted: Decimal | float | int) -> float:
    """Σ gain_pp x bps, divided by 10000 and rounded half-even to 6 places, exactly."""
    return float((Decimal(str(weighted)) / TOTAL_BPS).quantize(PLACES, rounding=ROUND_HALF_EVEN))


class ContributorService:
    def __init__(self, session: AsyncSession) -> None:
        self.contributions = ContributionRepository(session)

    async def impact(self, address: str) -> Impact:
        """What an address's contributions achieved; an address never seen has zero impact."""
        stored = normalize_address(address)
        per_model = await self.contributions.impact_by_model(stored)
        return Impact(
            address=checksummed(stored),
            contributions=sum(m.versions for m in per_model),
            models_improved=len(per_model),
            deltaone_accepted=sum(m.accepted for m in per_model),
            weighted_gain_pp=_pp(sum((Decimal(str(m.weighted)) for m in per_model), Decimal(0))),
            accepted_weighted_gain_pp=_pp(
                sum((Decimal(str(m.accepted_weighted)) for m in per_model), Decimal(0))
            ),
            first_contribution_at=min((m.first for m in per_model), default=None),
            last_contribution_at=max((m.last for m in per_model), default=None),
            models=[
                ModelImpact(
                    model=m.model,
                    versions=m.versions,
                    weighted_gain_pp=_pp(m.weighted),
                    deltaone_accepted=m.accepted,
                )
                for m in per_model
            ],
            attestation_ids=await self.contributions.attestation_ids(stored),
        )

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
                attestation_id=row.attestation_id,
                created_at=row.created_at,
            )
            for row in rows
        ], total
