"""A/B tests, their variants and exposures.
Repositories flush when they need an id and never commit."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import Case, String, and_, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.core.errors import AbTestConflict
from app.core.vocabulary import Verdict
from app.db.models import AbExposure, AbTest, AbVariant
from app.db.repositories.common import page


class AbTestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, test: AbTest, variants: list[AbVariant]) -> None:
        self.session.add_all([test, *variants])
        await self.session.flush()

    async def get(self, test_id: uuid.UUID, *, for_update: bool = False) -> AbTest | None:
        query = select(AbTest).where(AbTest.id == test_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def variants(self, test_id: uuid.UUID) -> list[AbVariant]:
        query = select(AbVariant).where(AbVariant.test_id == test_id).order_by(AbVariant.position)
        return list(
            (
                await self.session.execute(query, execution_options={"populate_existing": True})
            ).scalars()
        )

    async def variants_of(self, test_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[AbVariant]]:
        found: dict[uuid.UUID, list[AbVariant]] = {test_id: [] for test_id in test_ids}
        if test_ids:
            query = (
                select(AbVariant)
                .where(AbVariant.test_id.in_(test_ids))
                .order_by(AbVariant.test_id, AbVariant.position)
            )
            for variant in (await self.session.execute(query)).scalars():
                found[variant.test_id].append(variant)
        return found

    async def running_for_model(self, model_id: uuid.UUID) -> AbTest | None:
        query = select(AbTest).where(AbTest.model_id == model_id, AbTest.status == "running")
        return (await self.session.execute(query)).scalar_one_or_none()

    async def live_using(self, model_id: uuid.UUID, version: int | None = None) -> list[str]:
        """Names of the model's running or paused tests (with a variant on `version`, if given)."""
        query = select(AbTest.name).where(
            AbTest.model_id == model_id, AbTest.status.in_(["running", "paused"])
        )
        if version is not None:
            query = query.where(
                AbTest.id.in_(select(AbVariant.test_id).where(AbVariant.version == version))
            )
        return sorted(set((await self.session.execute(query)).scalars()))

    async def page(
        self, *, model_id: uuid.UUID | None, status: str | None, limit: int, offset: int
    ) -> tuple[list[AbTest], int]:
        query = select(AbTest).order_by(AbTest.created_at.desc(), AbTest.id)
        if model_id is not None:
            query = query.where(AbTest.model_id == model_id)
        if status is not None:
            query = query.where(AbTest.status == status)
        return await page(self.session, query, limit, offset)

    async def save(self) -> None:
        """Flush; a second running test for a model (the partial unique index) is a conflict."""
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError as exc:
            if "uq_ab_tests_running_model" in str(exc.orig) or "ab_tests.model_id" in str(exc.orig):
                raise AbTestConflict("The model already has a running A/B test") from exc
            raise

    async def move_verdict(self, test: AbTest, previous: Verdict | None, verdict: Verdict) -> bool:
        """Record the test's verdict if it is still `previous`; False when another request moved
        it first (the row lock makes the second writer see the first one's value)."""
        result = await self.session.execute(
            update(AbTest)
            .where(AbTest.id == test.id, AbTest.last_verdict.is_not_distinct_from(previous))
            .values(last_verdict=verdict)
            .execution_options(synchronize_session=False)
        )
        set_committed_value(test, "last_verdict", verdict)
        return bool(result.rowcount)  # type: ignore[attr-defined]  # an UPDATE gives a CursorResult

    async def exposed(self, test_id: uuid.UUID, unit_ids: list[str]) -> set[str]:
        """Which of these units were exposed to the test (one statement for a whole batch)."""
        if self.session.get_bind().dialect.name != "postgresql":
            among = AbExposure.unit_id.in_(unit_ids)
            query = select(AbExposure.unit_id).where(AbExposure.test_id == test_id, among)
            return set(await self.session.scalars(query))
        # One array parameter, joined row by row through the primary key. (`unit_id = ANY(...)`
        # turns, once the driver prepares the statement, into a generic plan that scans every
        # exposure of the test for each batch: 15 times slower at 10,000 exposures.)
        units = func.unnest(bindparam("units", unit_ids, type_=postgresql.ARRAY(String)))
        batch = units.table_valued("unit_id").render_derived(name="batch")
        query = select(AbExposure.unit_id).join_from(
            batch,
            AbExposure,
            and_(AbExposure.test_id == test_id, AbExposure.unit_id == batch.c.unit_id),
        )
        return set(await self.session.scalars(query))

    async def add_outcomes(
        self, test_id: uuid.UUID, added: dict[int, tuple[int, float, float]]
    ) -> None:
        """Add to the sufficient statistics in place, in one statement for every variant:
        concurrent posters lose nothing."""

        def by_position(part: int) -> Case[float]:
            return case({p: added[p][part] for p in added}, value=AbVariant.position)

        await self.session.execute(
            update(AbVariant)
            .where(AbVariant.test_id == test_id, AbVariant.position.in_(sorted(added)))
            .values(
                n=AbVariant.n + by_position(0),
                total=AbVariant.total + by_position(1),
                total_sq=AbVariant.total_sq + by_position(2),
            )
            # Variants read afterwards are read again (`variants` populates existing objects).
            .execution_options(synchronize_session=False)
        )


async def expose(
    connection: AsyncConnection, exposures: list[tuple[uuid.UUID, str, int]]
) -> set[tuple[uuid.UUID, str]]:
    """Record first exposures (test, unit, variant position) and count the new ones on their
    variants; the (test, unit) pairs that were new. SQLite's statements (the embedded mode), in
    the caller's transaction; Postgres has `expose_on_postgres`. Rows go in key order, so
    concurrent writers lock in one order."""
    unique = {(test_id, unit_id): position for test_id, unit_id, position in exposures}
    keys = sorted(unique)
    inserted = (
        await connection.execute(
            sqlite.insert(AbExposure)
            .values([{"test_id": k[0], "unit_id": k[1], "position": unique[k]} for k in keys])
            .on_conflict_do_nothing(index_elements=[AbExposure.test_id, AbExposure.unit_id])
            .returning(AbExposure.test_id, AbExposure.unit_id, AbExposure.position)
        )
    ).all()
    counts = Counter((row.test_id, row.position) for row in inserted)
    for (test_id, position), count in sorted(counts.items()):
        await connection.execute(
            update(AbVariant)
            .where(AbVariant.test_id == test_id, AbVariant.position == position)
            .values(exposures=AbVariant.exposures + count)
        )
    return {(row.test_id, row.unit_id) for row in inserted}


async def expose_on_postgres(
    connection: psycopg.AsyncConnection[Any], exposures: list[tuple[uuid.UUID, str, int]]
) -> set[tuple[uuid.UUID, str]]:
    """`expose` on Postgres: one prepared statement per test (usually one), each atomic by
    itself, on an autocommit driver connection (the exposure log's own): no ORM, no greenlet, no
    BEGIN or COMMIT round trips. Rows go in key order, so concurrent writers lock in one order."""
    unique = {(test_id, unit_id): position for test_id, unit_id, position in exposures}
    keys = sorted(unique)
    new: set[tuple[uuid.UUID, str]] = set()
    for test_id in sorted({test_id for test_id, _ in keys}):
        units = [unit_id for t, unit_id in keys if t == test_id]
        parameters = {
            "test_id": test_id,
            "unit_ids": units,
            "positions": [unique[test_id, unit_id] for unit_id in units],
        }
        cursor = await connection.execute(EXPOSE, parameters, prepare=True)
        new.update((test_id, unit_id) for (unit_id,) in await cursor.fetchall())
    return new


# First exposures of one test and their counts, in one statement (Postgres).
EXPOSE = """
WITH new AS (
    INSERT INTO ab_exposures (test_id, unit_id, position)
    SELECT CAST(%(test_id)s AS uuid), unit_id, position
    FROM unnest(CAST(%(unit_ids)s AS varchar[]), CAST(%(positions)s AS integer[]))
        AS u(unit_id, position)
    ON CONFLICT (test_id, unit_id) DO NOTHING
    RETURNING test_id, unit_id, position
), counted AS (
    UPDATE ab_variants AS v SET exposures = v.exposures + c.n
    FROM (SELECT test_id, position, count(*) AS n FROM new GROUP BY test_id, position) AS c
    WHERE v.test_id = c.test_id AND v.position = c.position
)
SELECT unit_id FROM new
"""
