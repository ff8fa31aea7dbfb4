"""First exposures, written in groups: each (test, unit) counts once, on Postgres (one statement)
and on SQLite (the embedded mode's portable statements) alike."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.base import Base, utcnow
from app.db.models import AbTest, AbVariant, MlModel
from app.db.repositories.ab_tests import expose, expose_on_postgres


@pytest.fixture(params=["postgresql", "sqlite"])
async def engine(
    request: pytest.FixtureRequest, clean_database: str, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    if request.param == "postgresql":
        engine = create_async_engine(clean_database)
    else:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/embedded.db")
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


async def a_test(engine: AsyncEngine) -> uuid.UUID:
    model, test, now = uuid.uuid4(), uuid.uuid4(), utcnow()
    async with engine.begin() as connection:
        await connection.execute(
            MlModel.__table__.insert().values(
                id=model,
                name=f"m-{model.hex[:8]}",
                model_type="custom",
                tags={},
                benchmark_metric="score",
                benchmark_direction="higher_is_better",
                benchmark_family="continuous",
                created_at=now,
                updated_at=now,
            )
        )
        await connection.execute(
            AbTest.__table__.insert().values(
                id=test,
                name="t",
                model_id=model,
                status="running",
                unit="user_id",
                metric_name="converted",
                metric_kind="binary",
                metric_direction="higher_is_better",
                minimum_sample_size=10,
                confidence_level=0.95,
                created_at=now,
                updated_at=now,
            )
        )
        for position in (0, 1):
            await connection.execute(
                AbVariant.__table__.insert().values(
                    test_id=test,
                    position=position,
                    name=f"v{position}",
                    version=position + 1,
                    weight=0.5,
                    exposures=0,
                    n=0,
                    total=0.0,
                    total_sq=0.0,
                )
            )
    return test


async def write(engine: AsyncEngine, group: list[tuple[uuid.UUID, str, int]]) -> set[Any]:
    """A group as the exposure log writes it: on Postgres through the driver, in autocommit."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            raw = await connection.get_raw_connection()
            return await expose_on_postgres(raw.driver_connection, group)  # type: ignore[arg-type]
    async with engine.begin() as connection:
        return await expose(connection, group)


async def test_each_unit_counts_once_across_and_within_groups(engine: AsyncEngine) -> None:
    test = await a_test(engine)
    first = await write(engine, [(test, "a", 0), (test, "b", 1), (test, "a", 0)])
    second = await write(engine, [(test, "b", 1), (test, "c", 1)])
    async with engine.connect() as connection:
        counts = (
            (
                await connection.execute(
                    select(AbVariant.exposures)
                    .where(AbVariant.test_id == test)
                    .order_by(AbVariant.position)
                )
            )
            .scalars()
            .all()
        )
    assert first == {(test, "a"), (test, "b")}
    assert second == {(test, "c")}
    assert counts == [1, 2]
