"""Contributions and contributor impact.
Repositories flush when they need an id and never commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.vocabulary import Basis
from app.db.models import MlModel, VersionContributor


class ModelGroup(NamedTuple):
    """An address's contributions to one model on one basis. Weighted gains are exact:
    Σ gain_pp x weight_bps."""

    model: str
    model_id: uuid.UUID
    basis: Basis | None
    versions: int
    accepted: int
    weighted: Decimal
    accepted_weighted: Decimal
    first: datetime
    last: datetime


class Leader(NamedTuple):
    """One contributor in the list: counts and exact accepted weighted gains."""

    address: str
    contributions: int
    models: int
    accepted: int
    measured: Decimal
    claimed: Decimal
    last: datetime


class ContributionRow(NamedTuple):
    model: str
    version: int
    weight_bps: int
    gain_pp: Decimal | None
    deltaone_accepted: bool | None
    basis: Basis | None
    attestation_id: str | None
    created_at: datetime


class ContributionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def impact_by_model(self, address: str) -> list[ModelGroup]:
        """Per model and basis (measured, claimed): contributions, accepted count, exact
        weighted gains, first and last. One index range of `version_contributors`; only model
        names are joined."""
        c = VersionContributor.__table__.c
        gain = func.coalesce(c.gain_pp, 0) * c.weight_bps
        accepted = c.deltaone_accepted.is_(True)
        per_model = (
            select(
                c.model_id,
                c.basis,
                func.count().label("versions"),
                func.count().filter(accepted).label("accepted"),
                func.coalesce(func.sum(gain), 0).label("weighted"),
                func.coalesce(func.sum(case((accepted, gain), else_=0)), 0).label(
                    "accepted_weighted"
                ),
                func.min(c.created_at).label("first"),
                func.max(c.created_at).label("last"),
            )
            .where(c.address == address)
            .group_by(c.model_id, c.basis)
            .subquery()
        )
        query = (
            select(MlModel.__table__.c.name.label("model"), per_model)
            .join(per_model, per_model.c.model_id == MlModel.__table__.c.id)
            .order_by(MlModel.__table__.c.name, per_model.c.basis)
        )
        connection = await self.session.connection()
        return [ModelGroup(**row._mapping) for row in await connection.execute(query)]

    async def leaders(self, *, limit: int, offset: int) -> tuple[list[Leader], int]:
        """Every address that contributed: contributions, models, accepted count, exact measured
        and claimed accepted weighted gains, last contribution; the largest measured gain first,
        then the largest claimed one."""
        c = VersionContributor.__table__.c
        accepted = c.deltaone_accepted.is_(True)
        gain = func.coalesce(c.gain_pp, 0) * c.weight_bps

        def accepted_gain(measured: bool) -> ColumnElement[Decimal]:
            on_basis = c.basis == "measured" if measured else c.basis.is_distinct_from("measured")
            return func.coalesce(func.sum(case((accepted & on_basis, gain), else_=0)), 0)

        measured = accepted_gain(True).label("measured")
        claimed = accepted_gain(False).label("claimed")
        query = (
            select(
                c.address,
                func.count().label("contributions"),
                func.count(func.distinct(c.model_id)).label("models"),
                func.count().filter(accepted).label("accepted"),
                measured,
                claimed,
                func.max(c.created_at).label("last"),
            )
            .group_by(c.address)
            .order_by(measured.desc(), claimed.desc(), c.address)
            .limit(limit)
            .offset(offset)
        )
        connection = await self.session.connection()
        total = await connection.scalar(select(func.count(func.distinct(c.address))))
        return [Leader._make(row) for row in await connection.execute(query)], total or 0

    async def attestation_ids(self, address: str) -> list[str]:
        c = VersionContributor.__table__.c
        query = (
            select(c.attestation_id)
            .where(c.address == address, c.attestation_id.is_not(None))
            .order_by(c.created_at, c.version_id)
        )
        connection = await self.session.connection()
        return list((await connection.execute(query)).scalars())

    async def page(
        self, address: str, *, limit: int, offset: int
    ) -> tuple[list[ContributionRow], int]:
        c, models = VersionContributor.__table__.c, MlModel.__table__.c
        connection = await self.session.connection()
        total = await connection.scalar(
            select(func.count())
            .select_from(VersionContributor.__table__)
            .where(c.address == address)
        )
        query = (
            select(
                models.name.label("model"),
                c.version,
                c.weight_bps,
                c.gain_pp,
                c.deltaone_accepted,
                c.basis,
                c.attestation_id,
                c.created_at,
            )
            .join(MlModel.__table__, models.id == c.model_id)
            .where(c.address == address)
            .order_by(c.created_at.desc(), c.version_id)
            .limit(limit)
            .offset(offset)
        )
        return [ContributionRow._make(row) for row in await connection.execute(query)], total or 0
