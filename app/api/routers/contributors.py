from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ContributorServiceDep, ReaderDep
from app.api.errors import AUTHENTICATED, problems
from app.api.routers import API_PREFIX, Limit, Offset
from app.schemas.common import DEFAULT_LIMIT, Page
from app.schemas.contributors import Contribution, Impact

router = APIRouter(
    prefix=f"{API_PREFIX}/contributors", tags=["contributors"], responses=problems(*AUTHENTICATED)
)


@router.get("/{address}/impact", response_model=Impact, responses=problems(422))
async def get_contributor_impact(
    address: str, _: ReaderDep, contributors: ContributorServiceDep
) -> Impact:
    """What an address's contributions achieved: counts, exact weighted gains (all and accepted
    DeltaOnes only), per model, and the attestations that cover them. Any letter case; an address
    never seen has zero impact."""
    return await contributors.impact(address)


@router.get("/{address}/contributions", response_model=Page[Contribution], responses=problems(422))
async def list_contributions(
    address: str,
    _: ReaderDep,
    contributors: ContributorServiceDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> Page[Contribution]:
    """An address's contributions, newest first."""
    items, total = await contributors.contributions_of(address, limit=limit, offset=offset)
    return Page[Contribution](items=items, total=total, limit=limit, offset=offset)
