"""Lineage: one recursive query over parent links, however deep.
Repositories flush when they need an id and never commit."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ModelVersion


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
    ) -> list[Any]:
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
        return list(await self.session.execute(query.order_by(ModelVersion.version)))

    async def whole(self, model_id: uuid.UUID) -> list[Any]:
        query = select(*self.COLUMNS).where(ModelVersion.model_id == model_id)
        return list(await self.session.execute(query.order_by(ModelVersion.version)))
