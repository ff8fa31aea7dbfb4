"""Held benchmarks: by hash, listed newest first. Repositories flush and never commit."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Benchmark
from app.db.repositories.common import page


class BenchmarkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, digest: str) -> Benchmark | None:
        return await self.session.get(Benchmark, digest)

    async def add(self, benchmark: Benchmark) -> Benchmark:
        self.session.add(benchmark)
        await self.session.flush()
        return benchmark

    async def page(self, *, limit: int, offset: int) -> tuple[Sequence[Benchmark], int]:
        query = select(Benchmark).order_by(Benchmark.created_at.desc(), Benchmark.hash)
        return await page(self.session, query, limit=limit, offset=offset)
