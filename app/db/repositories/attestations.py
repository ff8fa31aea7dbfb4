"""Attestations and signing keys.
Repositories flush when they need an id and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Attestation, MlModel, ModelVersion, SigningKey
from app.db.repositories.common import insert, page


class AttestationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, attestation: Attestation) -> None:
        """Added, not flushed: the caller's next flush writes it."""
        self.session.add(attestation)

    async def get(self, attestation_id: str) -> Attestation | None:
        return await self.session.get(Attestation, attestation_id)

    async def latest_for_model(self, model_id: uuid.UUID) -> Attestation | None:
        """The head of the model's chain: the attestation no other one names as previous."""
        later = select(Attestation.previous_id).where(
            Attestation.model_id == model_id, Attestation.previous_id.is_not(None)
        )
        query = (
            select(Attestation)
            .where(Attestation.model_id == model_id, Attestation.id.not_in(later))
            .order_by(Attestation.created_at.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def for_model(self, model_id: uuid.UUID) -> Sequence[Attestation]:
        query = (
            select(Attestation)
            .where(Attestation.model_id == model_id)
            .order_by(Attestation.created_at, Attestation.id)
        )
        return (await self.session.execute(query)).scalars().all()

    async def page_for_model(
        self, model_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[Sequence[Attestation], int]:
        query = (
            select(Attestation)
            .where(Attestation.model_id == model_id)
            .order_by(Attestation.created_at, Attestation.id)
        )
        return await page(self.session, query, limit, offset)

    async def versions_of(self, attestations: Sequence[Attestation]) -> dict[str, tuple[str, int]]:
        """attestation id -> (model name, version number)."""
        if not attestations:
            return {}
        query = (
            select(Attestation.id, MlModel.name, ModelVersion.version)
            .join(ModelVersion, ModelVersion.id == Attestation.version_id)
            .join(MlModel, MlModel.id == Attestation.model_id)
            .where(Attestation.id.in_([a.id for a in attestations]))
        )
        return {row.id: (row.name, row.version) for row in await self.session.execute(query)}

    async def add_key(self, key: SigningKey) -> None:
        statement = insert(self.session, SigningKey).values(
            keyid=key.keyid,
            algorithm=key.algorithm,
            public_key_pem=key.public_key_pem,
            created_at=key.created_at,
        )
        await self.session.execute(statement.on_conflict_do_nothing(index_elements=["keyid"]))

    async def key(
        self, keyid: str, *, lock: Literal["share", "update"] | None = None
    ) -> SigningKey | None:
        """A key by id; `lock`: share-locked (to sign) or locked to change, until the
        transaction ends."""
        query = select(SigningKey).where(SigningKey.keyid == keyid)
        if lock is not None:
            query = query.with_for_update(read=lock == "share")
        return (await self.session.execute(query)).scalar_one_or_none()

    async def keys(self, *, lock: bool = False) -> Sequence[SigningKey]:
        query = select(SigningKey).order_by(SigningKey.created_at)
        if lock:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalars().all()
