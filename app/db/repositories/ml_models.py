"""Models, versions and aliases, and the one-round-trip resolution predictions use.
Repositories flush when they need an id and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Executable, Select, and_, bindparam, delete, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.errors import TokenIdTaken
from app.db.models import AliasEvent, MlModel, ModelAlias, ModelVersion, VersionContributor
from app.db.repositories.common import insert, page


class Share(NamedTuple):
    """One contributor's share of a version."""

    version_id: uuid.UUID
    address: str
    weight_bps: int


class ResolvedTarget(NamedTuple):
    """What a prediction needs of a model and a version, read in one round trip."""

    id: uuid.UUID
    name: str
    number: int | None  # None (and the next two): no such version
    source_uri: str | None
    artifact_digest: str | None
    model_archived_at: datetime | None
    version_archived_at: datetime | None
    aliased: bool  # whether the alias asked for is set


async def model_names(connection: AsyncConnection | AsyncSession, limit: int = 1_000) -> list[str]:
    """Model names, for suggesting the one a caller meant: an error path a caller can repeat at
    will, so bounded (a query of at most `limit` names, and difflib over them)."""
    query = select(MlModel.name).order_by(MlModel.name).limit(limit)
    return list((await connection.execute(query)).scalars())


async def alias_names(connection: AsyncConnection, model_id: uuid.UUID) -> list[str]:
    """A model's aliases, for saying which exist when a caller names another (an error path)."""
    query = select(ModelAlias.alias).where(ModelAlias.model_id == model_id).limit(100)
    return list((await connection.execute(query)).scalars())


class MlModelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_name(self, name: str, *, for_update: bool = False) -> MlModel | None:
        query = select(MlModel).where(MlModel.name == name)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def get_by_id(self, model_id: uuid.UUID) -> MlModel | None:
        return await self.session.get(MlModel, model_id)

    async def names(self, model_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not model_ids:
            return {}
        query = select(MlModel.id, MlModel.name).where(MlModel.id.in_(set(model_ids)))
        return {model_id: name for model_id, name in await self.session.execute(query)}

    async def get_by_token_id(self, token_id: str) -> MlModel | None:
        query = select(MlModel).where(MlModel.token_id == token_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def add_if_absent(self, model: MlModel) -> MlModel:
        """Insert unless the name exists (concurrent first registrations), then return the row,
        locked for this transaction."""
        values = {c.key: getattr(model, c.key) for c in MlModel.__table__.columns}
        statement = insert(self.session, MlModel).values(values)
        await self._flush_token(statement.on_conflict_do_nothing(index_elements=[MlModel.name]))
        stored = await self.get_by_name(model.name, for_update=True)
        assert stored is not None
        return stored

    async def save(self) -> None:
        await self._flush_token(None)

    async def lock(self, model: MlModel) -> None:
        """Hold the model's row until the transaction ends: one chain, one cooldown at a time."""
        await self.session.execute(
            select(MlModel.id).where(MlModel.id == model.id).with_for_update()
        )

    async def _flush_token(self, statement: Executable | None) -> None:
        """Run `statement` (or flush); a token id taken meanwhile becomes TokenIdTaken."""
        try:
            async with self.session.begin_nested():
                if statement is not None:
                    await self.session.execute(statement)
                await self.session.flush()
        except IntegrityError as exc:
            if "token_id" in str(exc.orig):
                raise TokenIdTaken("token_id already belongs to another model") from exc
            raise

    async def page(
        self,
        *,
        limit: int,
        offset: int,
        token_id: str | None,
        model_type: str | None,
        search: str | None = None,
        include_archived: bool = False,
    ) -> tuple[Sequence[MlModel], int]:
        query = select(MlModel).order_by(MlModel.name)
        if not include_archived:
            query = query.where(MlModel.archived_at.is_(None))
        if search:  # contains, case-insensitive, taken literally (% and _ are not wildcards)
            query = query.where(
                or_(
                    MlModel.name.icontains(search, autoescape=True),
                    MlModel.token_id.icontains(search, autoescape=True),
                )
            )
        if token_id is not None:
            query = query.where(MlModel.token_id == token_id.upper())
        if model_type is not None:
            query = query.where(MlModel.model_type == model_type)
        return await page(self.session, query, limit, offset)

    async def latest_versions(self, model_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Each model's newest version that is not archived."""
        query = (
            select(ModelVersion.model_id, func.max(ModelVersion.version))
            .where(ModelVersion.model_id.in_(model_ids), ModelVersion.archived_at.is_(None))
            .group_by(ModelVersion.model_id)
        )
        return {model_id: version for model_id, version in await self.session.execute(query)}


class VersionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, version: ModelVersion, contributors: list[VersionContributor]) -> None:
        # One flush: the unit of work inserts the version before the rows that refer to it.
        # Adding again what was added is a no-op, so callers may flush early for an id.
        self.session.add_all([version, *contributors])
        await self.session.flush()

    async def get(self, model_id: uuid.UUID, version: int) -> ModelVersion | None:
        query = select(ModelVersion).where(
            ModelVersion.model_id == model_id, ModelVersion.version == version
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def get_by_id(self, version_id: uuid.UUID) -> ModelVersion | None:
        return await self.session.get(ModelVersion, version_id)

    async def numbers(self, version_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        if not version_ids:
            return {}
        query = select(ModelVersion.id, ModelVersion.version).where(
            ModelVersion.id.in_(set(version_ids))
        )
        return {version_id: number for version_id, number in await self.session.execute(query)}

    async def accepted_since(self, model_id: uuid.UUID, dataset_hash: str, since: datetime) -> bool:
        """Whether a version of the model was DeltaOne-accepted on this dataset since `since`."""
        query = (
            select(ModelVersion.id)
            .where(
                ModelVersion.model_id == model_id,
                ModelVersion.dataset_hash == dataset_hash,
                ModelVersion.deltaone_accepted.is_(True),
                ModelVersion.created_at >= since,
            )
            .limit(1)
        )
        return (await self.session.execute(query)).first() is not None

    async def measured_submissions(
        self, addresses: list[str], dataset_hash: str, since: datetime
    ) -> dict[str, int]:
        """Per contributor address: versions measured on this dataset since `since`."""
        query = (
            select(VersionContributor.address, func.count())
            .join(ModelVersion, ModelVersion.id == VersionContributor.version_id)
            .where(
                VersionContributor.address.in_(addresses),
                VersionContributor.created_at >= since,
                ModelVersion.dataset_hash == dataset_hash,
                ModelVersion.deltaone["basis"].as_string() == "measured",
            )
            .group_by(VersionContributor.address)
        )
        return {address: count for address, count in (await self.session.execute(query)).all()}

    async def recorded(self, names: Collection[str]) -> set[tuple[str, int]]:
        """(model name, version number) of every version Postgres holds for the named models."""
        found: set[tuple[str, int]] = set()
        for chunk in _chunks(sorted(names)):
            query = (
                select(MlModel.name, ModelVersion.version)
                .join(ModelVersion, ModelVersion.model_id == MlModel.id)
                .where(MlModel.name.in_(chunk))
            )
            found.update((name, number) for name, number in await self.session.execute(query))
        return found

    async def behind_alias(self, alias: str) -> list[tuple[MlModel, ModelVersion]]:
        """Every model's version behind `alias`, most recently changed models first."""
        query = (
            select(MlModel, ModelVersion)
            .join(ModelAlias, ModelAlias.model_id == MlModel.id)
            .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
            .where(ModelAlias.alias == alias, MlModel.archived_at.is_(None))
            .order_by(MlModel.updated_at.desc())
        )
        return [(row[0], row[1]) for row in await self.session.execute(query)]

    async def latest_baseline(self, model_id: uuid.UUID) -> ModelVersion | None:
        query = (
            select(ModelVersion)
            .where(
                ModelVersion.model_id == model_id,
                ModelVersion.kind == "baseline",
                ModelVersion.archived_at.is_(None),
            )
            .order_by(ModelVersion.version.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def page(
        self, model_id: uuid.UUID, *, limit: int, offset: int, include_archived: bool = False
    ) -> tuple[Sequence[ModelVersion], int]:
        query = (
            select(ModelVersion)
            .where(ModelVersion.model_id == model_id)
            .order_by(ModelVersion.version.desc())
        )
        if not include_archived:
            query = query.where(ModelVersion.archived_at.is_(None))
        return await page(self.session, query, limit, offset)

    async def contributors(self, version_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Share]]:
        """The shares of each version, largest first; plain rows, not entities, since a lineage
        graph asks for thousands."""
        found: dict[uuid.UUID, list[Share]] = {v: [] for v in version_ids}
        if version_ids:
            query = (
                select(
                    VersionContributor.version_id,
                    VersionContributor.address,
                    VersionContributor.weight_bps,
                )
                .where(VersionContributor.version_id.in_(version_ids))
                .order_by(VersionContributor.weight_bps.desc(), VersionContributor.address)
            )
            for row in await self.session.execute(query):
                found[row.version_id].append(Share(*row))
        return found


class AliasRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def current(self, model_id: uuid.UUID) -> dict[str, int]:
        """alias -> version number, for one model."""
        query = (
            select(ModelAlias.alias, ModelVersion.version)
            .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
            .where(ModelAlias.model_id == model_id)
            .order_by(ModelAlias.alias)
        )
        return {alias: version for alias, version in await self.session.execute(query)}

    async def current_for_models(
        self, model_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, dict[str, int]]:
        found: dict[uuid.UUID, dict[str, int]] = {model_id: {} for model_id in model_ids}
        query = (
            select(ModelAlias.model_id, ModelAlias.alias, ModelVersion.version)
            .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
            .where(ModelAlias.model_id.in_(model_ids))
            .order_by(ModelAlias.alias)
        )
        for model_id, alias, version in await self.session.execute(query):
            found[model_id][alias] = version
        return found

    async def by_model_name(self, names: Collection[str]) -> dict[str, dict[str, int]]:
        """model name -> alias -> version number, for the named models that exist."""
        found: dict[str, dict[str, int]] = {}
        for chunk in _chunks(sorted(names)):
            models = select(MlModel.id, MlModel.name).where(MlModel.name.in_(chunk)).subquery()
            for (name,) in await self.session.execute(select(models.c.name)):
                found.setdefault(name, {})
            query = (
                select(models.c.name, ModelAlias.alias, ModelVersion.version)
                .join(ModelAlias, ModelAlias.model_id == models.c.id)
                .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
            )
            for name, alias, version in await self.session.execute(query):
                found[name][alias] = version
        return found

    async def get(self, model_id: uuid.UUID, alias: str) -> ModelAlias | None:
        return await self.session.get(ModelAlias, (model_id, alias))

    async def put(
        self, model_id: uuid.UUID, alias: str, version_id: uuid.UUID, at: datetime
    ) -> None:
        existing = await self.get(model_id, alias)
        if existing is None:
            self.session.add(
                ModelAlias(model_id=model_id, alias=alias, version_id=version_id, updated_at=at)
            )
        else:
            existing.version_id = version_id
            existing.updated_at = at
        await self.session.flush()

    async def remove(self, model_id: uuid.UUID, alias: str) -> None:
        await self.session.execute(
            delete(ModelAlias).where(ModelAlias.model_id == model_id, ModelAlias.alias == alias)
        )

    async def record(self, event: AliasEvent) -> None:
        self.session.add(event)
        await self.session.flush()

    async def history(self, model_id: uuid.UUID, alias: str) -> Sequence[AliasEvent]:
        query = (
            select(AliasEvent)
            .where(AliasEvent.model_id == model_id, AliasEvent.alias == alias)
            .order_by(AliasEvent.at, AliasEvent.id)
        )
        return (await self.session.execute(query)).scalars().all()

    async def event_at(self, model_id: uuid.UUID, alias: str, at: datetime) -> AliasEvent | None:
        """The last move of the alias at or before `at`."""
        query = (
            select(AliasEvent)
            .where(AliasEvent.model_id == model_id, AliasEvent.alias == alias, AliasEvent.at <= at)
            .order_by(AliasEvent.at.desc(), AliasEvent.id.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()


def _chunks(items: list[str], size: int = 1_000) -> list[list[str]]:
    """Bounded IN lists: a registry of any size in queries of `size` names."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def _resolve_statements() -> tuple[Select[Any], Select[Any]]:
    """Built once: predictions resolve a version on every call, so the statement is not
    rebuilt each time (only its parameters change)."""
    m, v, a = MlModel.__table__.c, ModelVersion.__table__.c, ModelAlias.__table__.c
    models, versions = MlModel.__table__, ModelVersion.__table__
    columns = (
        m.id,
        m.name,
        v.version.label("number"),
        v.source_uri,
        v.artifact_digest,
        m.archived_at.label("model_archived_at"),
        v.archived_at.label("version_archived_at"),
    )
    by_version = (
        select(*columns, literal(True).label("aliased"))
        .select_from(models)
        .outerjoin(versions, and_(v.model_id == m.id, v.version == bindparam("version")))
        .where(m.name == bindparam("name"))
    )
    latest = (
        select(func.max(versions.c.version))
        .where(versions.c.model_id == m.id, versions.c.archived_at.is_(None))
        .correlate(models)
        .scalar_subquery()
    )
    by_alias = (
        select(*columns, a.alias.is_not(None).label("aliased"))
        .select_from(models)
        .outerjoin(ModelAlias.__table__, and_(a.model_id == m.id, a.alias == bindparam("alias")))
        .outerjoin(
            versions,
            and_(
                v.model_id == m.id,
                or_(v.id == a.version_id, and_(a.version_id.is_(None), v.version == latest)),
            ),
        )
        .where(m.name == bindparam("name"))
    )
    return by_version, by_alias


BY_VERSION, BY_ALIAS = _resolve_statements()


async def resolve_target(
    connection: AsyncConnection, name: str, version: int | None, alias: str
) -> ResolvedTarget | None:
    """What a prediction needs, in one round trip: the model, and the version asked for, or the
    alias's, or (when the alias is unset) the latest. None for an unknown model; `number` None
    when there is no such version; `aliased` says whether the alias is set."""
    if version is not None:
        result = await connection.execute(BY_VERSION, {"name": name, "version": version})
    else:
        result = await connection.execute(BY_ALIAS, {"name": name, "alias": alias})
    row = result.first()
    return None if row is None else ResolvedTarget(*row)
