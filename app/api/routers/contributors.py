from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from app.api.auth import ReaderDep
from app.api.deps import ContributorServiceDep
from app.api.errors import AUTHENTICATED, problems
from app.api.routers import API_PREFIX, Limit, Offset
from app.api.routing import Route
from app.schemas.common import ADDRESS, DEFAULT_LIMIT
from app.schemas.contributors import ContributionPage, ContributorPage, Impact

# Checked by the service (422 `invalid_address`, which also checks EIP-55 on mixed case); the
# pattern is declared so the document says what the server accepts.
AddressPath = Annotated[
    str,
    Path(
        json_schema_extra={"pattern": ADDRESS},
        description="0x and 40 hex digits, any case; mixed case must be a valid EIP-55 checksum",
    ),
]

router = APIRouter(
    prefix=f"{API_PREFIX}/contributors",
    tags=["contributors"],
    responses=problems(*AUTHENTICATED),
    route_class=Route,
)


@router.get("", response_model=ContributorPage, responses=problems(422))
async def list_contributors(
    _: ReaderDep,
    contributors: ContributorServiceDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> ContributorPage:
    """Every address that contributed to an improvement, the largest accepted gain the service
    measured first: contributions, models, accepted DeltaOnes, measured and claimed gains."""
    items, total = await contributors.list_contributors(limit=limit, offset=offset)
    return ContributorPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{address}/impact", response_model=Impact, responses=problems(422))
async def get_contributor_impact(
    address: AddressPath, _: ReaderDep, contributors: ContributorServiceDep
) -> Impact:
    """What an address's contributions achieved: counts, exact weighted gains (all and accepted
    DeltaOnes only), per model, and the attestations that cover them. Any letter case; an address
    never seen has zero impact."""
    return await contributors.impact(address)


@router.get("/{address}/contributions", response_model=ContributionPage, responses=problems(422))
async def list_contributions(
    address: AddressPath,
    _: ReaderDep,
    contributors: ContributorServiceDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> ContributionPage:
    """An address's contributions, newest first."""
    items, total = await contributors.contributions_of(address, limit=limit, offset=offset)
    return ContributionPage(items=items, total=total, limit=limit, offset=offset)
