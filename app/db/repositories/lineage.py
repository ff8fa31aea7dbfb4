"""Lineage: one recursive query over parent links, however deep.
Repositories flush when they need an id and never commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.vocabulary import Basis, Family, MetricDirection, Reason, VersionKind
from app.db.models import ModelVersion


class LineageRow(NamedTuple):
    """What lineage shows of a version (`LineageRepository.COLUMNS`, in order), and its signed
    `distance` from the version asked about (parents negative; None for the root baseline, and
    in a whole model's graph)."""

    id: uuid.UUID
    parent_id: uuid.UUID | None
    version: int
    kind: VersionKind
    primary_metric_value: float | None
    benchmark_direction: MetricDirection
    benchmark_family: Family
    deltaone_accepted: bool | None
    deltaone_reason: Reason | None
    deltaone_basis: Basis | None
    deltaone_gain_pp: Decimal | None
    attestation_id: str | None
    created_at: datetime
    distance: int | None


class LineageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # What lineage shows of a version: no JSON columns, no ORM identity map (thousands of rows).
    COLUMNS = (
        ModelVersion.id,
        ModelVersion.parent_id,
        ModelVersion.version,
        ModelVersion.kind,
        ModelVersion.primary_metric_value,
        ModelVersion.benchmark_direction,
        ModelVersion.benchmark_family,
        ModelVersion.deltaone_accepted,
        ModelVersion.deltaone_reason,
        ModelVersion.deltaone_basis,
        ModelVersion.deltaone_gain_pp,
        ModelVersion.attestation_id,
        ModelVersion.created_at,
    )

    async def walk(
        self, start_id: uuid.UUID, *, ancestors: bool, descendants: bool, depth: int
    ) -> list[LineageRow]:
        """Versions within `depth` hops of `start_id` with their signed `distance` (parents
        negative), and the root baseline of its line with distance NULL: one recursive query."""
        versions = ModelVersion.__table__
        walked = [
            select(versions.c.root_id.label("id"), literal(None).label("distance")).where(
                versions.c.id == start_id
            )
        ]
        up = (
            select(versions.c.id, versions.c.parent_id, literal(0).label("depth"))
            .where(versions.c.id == start_id)
            .cte("up", recursive=True)
        )
        up = up.union_all(
            select(versions.c.id, versions.c.parent_id, up.c.depth + 1)
            .join(up, versions.c.id == up.c.parent_id)
            .where(up.c.depth < (depth if ancestors else 0))
        )
        walked.append(select(up.c.id, (-up.c.depth).label("distance")))
        if descendants:
            down = (
                select(versions.c.id, literal(0).label("depth"))
                .where(versions.c.id == start_id)
                .cte("down", recursive=True)
            )
            down = down.union_all(
                select(versions.c.id, down.c.depth + 1)
                .join(down, versions.c.parent_id == down.c.id)
                .where(down.c.depth < depth)
            )
            walked.append(select(down.c.id, down.c.depth.label("distance")).where(down.c.depth > 0))
        around = union_all(*walked).subquery("around")
        query = select(*self.COLUMNS, around.c.distance).join(
            around, around.c.id == ModelVersion.id
        )
        rows = await self.session.execute(query.order_by(ModelVersion.version))
        return [LineageRow._make(row) for row in rows]

    async def whole(self, model_id: uuid.UUID) -> list[LineageRow]:
        query = select(*self.COLUMNS).where(ModelVersion.model_id == model_id)
        rows = await self.session.execute(query.order_by(ModelVersion.version))
        return [LineageRow._make((*row, None)) for row in rows]  # no distance
