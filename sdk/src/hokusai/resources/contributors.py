"""What a contributor's data achieved."""

from __future__ import annotations

from hokusai._base import Call, Page, model, path, query
from hokusai._resource import C, Resource, method, page_of, paged
from hokusai.types import Contribution, ContributorSummary, Impact


def list_contributors(offset: int) -> Call[Page[ContributorSummary]]:
    """Every address that contributed, the largest accepted gain the service measured first."""
    params = query(limit=500, offset=offset)
    return Call(
        "GET", path("contributors"), page_of(ContributorSummary), params=params, repeatable=True
    )


def impact(address: str) -> Call[Impact]:
    """Counts, exact weighted gains, per model, and the attestations that cover them."""
    return Call("GET", path("contributors", address, "impact"), model(Impact), repeatable=True)


def contributions(offset: int, address: str) -> Call[Page[Contribution]]:
    """Every contribution of an address, newest first."""
    params = query(limit=500, offset=offset)
    url = path("contributors", address, "contributions")
    return Call("GET", url, page_of(Contribution), params=params, repeatable=True)


class Contributors(Resource[C]):
    list = paged(list_contributors)
    impact = method(impact)
    contributions = paged(contributions)
