"""Aliases: moved in Postgres (the truth routing reads) with an event per move, so "what was
production at time T" has an answer; mirrored to MLflow once committed, holding no lock across
the call (a failed mirror is repaired by the registry reconciler); rollback moves `production`
back.

Rules: docs/reference/specification.md#aliases-rollback-and-compare."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from app.adapters.memory import MODEL, changed
from app.adapters.registry import Registry
from app.core.errors import (
    AliasNotFound,
    AppError,
    ModelNotFound,
    RollbackUnavailable,
)
from app.core.security import Principal
from app.core.vocabulary import PRODUCTION
from app.db.base import utcnow
from app.db.models import AliasEvent, MlModel
from app.db.repositories.ml_models import AliasRepository, MlModelRepository, VersionRepository
from app.db.session import after_commit, end_reads
from app.schemas.ml_models import (
    AliasAt,
    AliasEventRead,
    AliasRead,
)
from app.services.ml_models import MlModelService

log = logging.getLogger(__name__)


class AliasService:
    def __init__(
        self, session: AsyncSession, registry: Registry, ml_models: MlModelService
    ) -> None:
        self.session = session
        self.models = MlModelRepository(session)
        self.versions = VersionRepository(session)
        self.aliases = AliasRepository(session)
        self.registry = registry
        self.ml_models = ml_models

    async def list_aliases(self, name: str) -> dict[str, int]:
        return await self.aliases.current((await self.ml_models.get_model(name)).id)

    async def set_alias(
        self, name: str, alias: str, number: int, reason: str | None, actor: Principal
    ) -> AliasRead:
        """Point `alias` at a version: the row and a history event, then MLflow's alias once
        committed. The model row is locked until commit, so concurrent moves of one model's
        aliases line up."""
        model = await self._locked(name)
        target = await self.ml_models.live_version(model, number)
        current = await self.aliases.get(model.id, alias)
        now = utcnow()
        if current is not None and current.version_id == target.id:
            return AliasRead(alias=alias, version=number, updated_at=current.updated_at)
        from_version = None
        if current is not None:
            from_version = (await self.versions.numbers([current.version_id]))[current.version_id]
        await self.aliases.put(model.id, alias, target.id, now)
        await self._moved(model, alias, from_version, number, reason, actor, now)
        return AliasRead(alias=alias, version=number, updated_at=now)

    async def delete_alias(self, name: str, alias: str, actor: Principal) -> None:
        model = await self._locked(name)
        current = await self.aliases.get(model.id, alias)
        if current is None:
            raise AliasNotFound(f"Model {name} has no alias {alias}")
        numbers = await self.versions.numbers([current.version_id])
        await self.aliases.remove(model.id, alias)
        await self._moved(model, alias, numbers[current.version_id], None, None, actor, utcnow())

    async def _moved(
        self,
        model: MlModel,
        alias: str,
        from_version: int | None,
        to_version: int | None,
        reason: str | None,
        actor: Principal,
        at: datetime,
    ) -> None:
        """The move in the alias's history; once committed, the model's routing is forgotten and
        the alias mirrored to MLflow."""
        changed(self.session, MODEL, model.name)
        after_commit(self.session, partial(self.mirror, model.id, model.name, alias))
        event = AliasEvent(
            id=uuid.uuid4(),
            model_id=model.id,
            alias=alias,
            from_version=from_version,
            to_version=to_version,
            reason=reason,
            actor=actor.name,
            at=at,
        )
        await self.aliases.record(event)

    async def mirror(self, model_id: uuid.UUID, name: str, alias: str) -> bool:
        """MLflow's `alias` set to what Postgres says now (a move committed meanwhile wins), or
        removed. Best effort: MLflow down or hung leaves it for the reconciler; False then."""
        current = await self.aliases.current(model_id)
        await end_reads(self.session)
        try:
            if alias in current:
                await self.registry.set_alias(name, alias, current[alias])
            else:
                await self.registry.delete_alias(name, alias)
        except AppError as exc:
            log.warning(
                "alias %s of %s not mirrored to MLflow (%s); the reconciler will",
                alias,
                name,
                exc.code,
            )
            return False
        return True

    async def alias_history(self, name: str, alias: str) -> list[AliasEventRead]:
        model = await self.ml_models.get_model(name)
        events = await self.aliases.history(model.id, alias)
        if not events:
            raise AliasNotFound(f"Model {model.name} has no alias {alias}, now or before")
        return [AliasEventRead.model_validate(event) for event in events]

    async def alias_at(self, name: str, alias: str, at: datetime) -> AliasAt:
        model = await self.ml_models.get_model(name)
        event = await self.aliases.event_at(model.id, alias, at)
        return AliasAt(alias=alias, version=event.to_version if event else None, at=at)

    async def rollback(
        self, name: str, to_version: int | None, reason: str | None, actor: Principal
    ) -> AliasRead:
        """Move production back: to where it pointed before its last move, or to `to_version`
        if that version held production at some earlier time."""
        model = await self._locked(name)
        events = await self.aliases.history(model.id, PRODUCTION)
        current = events[-1].to_version if events else None
        if to_version is None:
            target = events[-1].from_version if events else None
            if target is None:
                raise RollbackUnavailable(f"production of {name} has no earlier version")
        else:
            held = {e.to_version for e in events[:-1]}
            if to_version not in held or to_version == current:
                raise RollbackUnavailable(
                    f"version {to_version} of {name} was not production before"
                )
            target = to_version
        return await self.set_alias(name, PRODUCTION, target, reason or "rollback", actor)

    async def _locked(self, name: str) -> MlModel:
        model = await self.models.get_by_name(name, for_update=True)
        if model is None:
            raise ModelNotFound(f"No model named {name}")
        return model
