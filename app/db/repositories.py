"""All SQL lives here. Repositories flush when they need an id and never commit."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from sqlalchemy import (
    Select,
    String,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.core.errors import AbTestConflict, TokenIdTaken
from app.db.models import (
    AbExposure,
    AbTest,
    AbVariant,
    AliasEvent,
    ApiKey,
    Attestation,
    IdempotencyRecord,
    MlModel,
    ModelAlias,
    ModelVersion,
    SigningKey,
    VersionContributor,
)

T = TypeVar("T")


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, api_key: ApiKey) -> ApiKey:
        self.session.add(api_key)
        await self.session.flush()
        return api_key

    async def add_if_absent(self, api_key: ApiKey) -> bool:
        """Insert unless a key with the same lookup exists (replicas racing at start-up)."""
        values = {
            "id": api_key.id,
            "name": api_key.name,
            "lookup": api_key.lookup,
            "key_hash": api_key.key_hash,
            "scopes": api_key.scopes,
            "created_at": api_key.created_at,
        }
        statement = (
            _insert(self.session, ApiKey)
            .values(values)
            .on_conflict_do_nothing(index_elements=[ApiKey.lookup])
        )
        result = await self.session.execute(statement.returning(ApiKey.id))
        return result.first() is not None

    async def get(self, api_key_id: uuid.UUID) -> ApiKey | None:
        return await self.session.get(ApiKey, api_key_id)

    async def get_by_lookup(self, lookup: str) -> ApiKey | None:
        result = await self.session.execute(select(ApiKey).where(ApiKey.lookup == lookup))
        return result.scalar_one_or_none()

    async def page(self, *, limit: int, offset: int) -> tuple[Sequence[ApiKey], int]:
        return await _page(
            self.session, select(ApiKey).order_by(ApiKey.created_at, ApiKey.id), limit, offset
        )


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self, api_key_id: uuid.UUID, key: str, fingerprint: str, now: datetime, expires_at: datetime
    ) -> bool:
        """Take the key for this request. On Postgres a concurrent claim of the same key waits
        here until the first request's transaction ends, then sees its stored response."""
        statement = (
            _insert(self.session, IdempotencyRecord)
            .values(
                api_key_id=api_key_id,
                key=key,
                fingerprint=fingerprint,
                created_at=now,
                expires_at=expires_at,
            )
            .on_conflict_do_nothing(
                index_elements=[IdempotencyRecord.api_key_id, IdempotencyRecord.key]
            )
            .returning(IdempotencyRecord.key)
        )
        if (await self.session.execute(statement)).first() is not None:
            return True
        expired = (
            update(IdempotencyRecord)
            .where(
                IdempotencyRecord.api_key_id == api_key_id,
                IdempotencyRecord.key == key,
                IdempotencyRecord.expires_at <= now,
            )
            .values(
                fingerprint=fingerprint,
                response_status=None,
                response_body=None,
                created_at=now,
                expires_at=expires_at,
            )
            .returning(IdempotencyRecord.key)
        )
        return (await self.session.execute(expired)).first() is not None

    async def get(self, api_key_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
        return await self.session.get(IdempotencyRecord, (api_key_id, key), populate_existing=True)

    async def complete(self, api_key_id: uuid.UUID, key: str, status: int, body: Any) -> None:
        await self.session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key)
            .values(response_status=status, response_body=body)
        )


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
        statement = _insert(self.session, MlModel).values(values)
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

    async def _flush_token(self, statement: Any) -> None:
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
        self, *, limit: int, offset: int, token_id: str | None, model_type: str | None
    ) -> tuple[Sequence[MlModel], int]:
        query = select(MlModel).order_by(MlModel.name)
        if token_id is not None:
            query = query.where(MlModel.token_id == token_id.upper())
        if model_type is not None:
            query = query.where(MlModel.model_type == model_type)
        return await _page(self.session, query, limit, offset)

    async def latest_versions(self, model_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        query = (
            select(ModelVersion.model_id, func.max(ModelVersion.version))
            .where(ModelVersion.model_id.in_(model_ids))
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

    async def latest(self, model_id: uuid.UUID) -> ModelVersion | None:
        query = (
            select(ModelVersion)
            .where(ModelVersion.model_id == model_id)
            .order_by(ModelVersion.version.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def behind_alias(self, alias: str) -> list[tuple[MlModel, ModelVersion]]:
        """Every model's version behind `alias`, most recently changed models first."""
        query = (
            select(MlModel, ModelVersion)
            .join(ModelAlias, ModelAlias.model_id == MlModel.id)
            .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
            .where(ModelAlias.alias == alias)
            .order_by(MlModel.updated_at.desc())
        )
        return [(row[0], row[1]) for row in await self.session.execute(query)]

    async def latest_baseline(self, model_id: uuid.UUID) -> ModelVersion | None:
        query = (
            select(ModelVersion)
            .where(ModelVersion.model_id == model_id, ModelVersion.kind == "baseline")
            .order_by(ModelVersion.version.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def page(
        self, model_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[Sequence[ModelVersion], int]:
        query = (
            select(ModelVersion)
            .where(ModelVersion.model_id == model_id)
            .order_by(ModelVersion.version.desc())
        )
        return await _page(self.session, query, limit, offset)

    async def contributors(self, version_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
        """(address, weight_bps) rows per version, largest share first; plain rows, since a
        lineage graph asks for thousands."""
        found: dict[uuid.UUID, list[Any]] = {v: [] for v in version_ids}
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
                found[row.version_id].append(row)
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
        return await _page(self.session, query, limit, offset)

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
        statement = _insert(self.session, SigningKey).values(
            keyid=key.keyid,
            algorithm=key.algorithm,
            public_key_pem=key.public_key_pem,
            created_at=key.created_at,
        )
        await self.session.execute(statement.on_conflict_do_nothing(index_elements=["keyid"]))

    async def keys(self) -> Sequence[SigningKey]:
        query = select(SigningKey).order_by(SigningKey.created_at)
        return (await self.session.execute(query)).scalars().all()


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


class ContributionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def impact_by_model(self, address: str) -> list[Any]:
        """Per model: contributions, accepted count, exact weighted gains, first and last.
        One index range of `version_contributors`; only model names are joined."""
        c = VersionContributor.__table__.c
        gain = func.coalesce(c.gain_pp, 0) * c.weight_bps
        accepted = c.deltaone_accepted.is_(True)
        per_model = (
            select(
                c.model_id,
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
            .group_by(c.model_id)
            .subquery()
        )
        query = (
            select(MlModel.__table__.c.name.label("model"), per_model)
            .join(per_model, per_model.c.model_id == MlModel.__table__.c.id)
            .order_by(MlModel.__table__.c.name)
        )
        connection = await self.session.connection()
        return list(await connection.execute(query))

    async def attestation_ids(self, address: str) -> list[str]:
        c = VersionContributor.__table__.c
        query = (
            select(c.attestation_id)
            .where(c.address == address, c.attestation_id.is_not(None))
            .order_by(c.created_at, c.version_id)
        )
        connection = await self.session.connection()
        return list((await connection.execute(query)).scalars())

    async def page(self, address: str, *, limit: int, offset: int) -> tuple[list[Any], int]:
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
                c.attestation_id,
                c.created_at,
            )
            .join(MlModel.__table__, models.id == c.model_id)
            .where(c.address == address)
            .order_by(c.created_at.desc(), c.version_id)
            .limit(limit)
            .offset(offset)
        )
        return list(await connection.execute(query)), total or 0


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

    async def page(
        self, *, model_id: uuid.UUID | None, status: str | None, limit: int, offset: int
    ) -> tuple[list[Any], int]:
        query = select(AbTest).order_by(AbTest.created_at.desc(), AbTest.id)
        if model_id is not None:
            query = query.where(AbTest.model_id == model_id)
        if status is not None:
            query = query.where(AbTest.status == status)
        return await _page(self.session, query, limit, offset)

    async def save(self) -> None:
        """Flush; a second running test for a model (the partial unique index) is a conflict."""
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError as exc:
            if "uq_ab_tests_running_model" in str(exc.orig) or "ab_tests.model_id" in str(exc.orig):
                raise AbTestConflict("The model already has a running A/B test") from exc
            raise

    async def move_verdict(self, test: AbTest, previous: str | None, verdict: str) -> bool:
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

        def by_position(part: int) -> Any:
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


def _resolve_statements() -> tuple[Any, Any]:
    """Built once: predictions resolve a version on every call, so the statement is not
    rebuilt each time (only its parameters change)."""
    m, v, a = MlModel.__table__.c, ModelVersion.__table__.c, ModelAlias.__table__.c
    models, versions = MlModel.__table__, ModelVersion.__table__
    columns = (m.id, m.name, v.version.label("number"), v.source_uri)
    by_version = (
        select(*columns, literal(True).label("aliased"))
        .select_from(models)
        .outerjoin(versions, and_(v.model_id == m.id, v.version == bindparam("version")))
        .where(m.name == bindparam("name"))
    )
    latest = (
        select(func.max(versions.c.version))
        .where(versions.c.model_id == m.id)
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
) -> Any:
    """What a prediction needs, in one round trip: the model, and the version asked for, or the
    alias's, or (when the alias is unset) the latest. None for an unknown model; `number` None
    when there is no such version; `aliased` says whether the alias is set."""
    if version is not None:
        result = await connection.execute(BY_VERSION, {"name": name, "version": version})
    else:
        result = await connection.execute(BY_ALIAS, {"name": name, "alias": alias})
    return result.first()


async def _page(
    session: AsyncSession, query: Select[*tuple[Any, ...]], limit: int, offset: int
) -> tuple[list[Any], int]:
    """One page and the total count, in one round trip (a window count over the filtered rows).
    Single-entity queries give entities; others give rows."""
    total = func.count().over().label("total")
    rows = (await session.execute(query.add_columns(total).limit(limit).offset(offset))).all()
    if rows:
        single = len(rows[0]) == 2
        return [row[0] if single else row for row in rows], rows[0].total
    if offset == 0:
        return [], 0
    counted = await session.scalar(
        select(func.count()).select_from(query.order_by(None).subquery())
    )
    return [], counted or 0


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
