"""Models and versions as they are read, their description and tags (mirrored to MLflow first),
their artifacts, and the comparison of two versions. (Registering: `registration.py`; aliases:
`aliases.py`.)

Rules: docs/reference/specification.md#aliases-rollback-and-compare."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.adapters import artifacts
from app.adapters.memory import MODEL, changed
from app.adapters.registry import Registry
from app.core.errors import (
    InUse,
    ModelArchived,
    ModelNotFound,
    VersionArchived,
    VersionNotFound,
)
from app.core.vocabulary import ModelType
from app.db.base import utcnow
from app.db.models import MlModel, ModelVersion, VersionContributor
from app.db.repositories.ab_tests import AbTestRepository
from app.db.repositories.ml_models import (
    AliasRepository,
    MlModelRepository,
    Share,
    VersionRepository,
    model_names,
)
from app.db.session import end_reads
from app.rules.contributors import checksummed
from app.rules.deltas import compare_metrics
from app.schemas.ml_models import (
    ArtifactRead,
    Benchmark,
    Comparison,
    ContributorRead,
    Dataset,
    DeltaOneRead,
    MetricComparison,
    MetricDeltaRead,
    MlModelRead,
    VersionRead,
)


class MlModelService:
    def __init__(self, session: AsyncSession, registry: Registry) -> None:
        self.session = session
        self.models = MlModelRepository(session)
        self.versions = VersionRepository(session)
        self.aliases = AliasRepository(session)
        self.registry = registry

    async def get_model(self, name: str) -> MlModel:
        model = await self.models.get_by_name(name)
        if model is None:
            raise ModelNotFound.named(name, await model_names(self.models.session))
        return model

    async def read_model(self, model: MlModel) -> MlModelRead:
        return (await self._read_models([model]))[0]

    async def list_models(
        self,
        *,
        limit: int,
        offset: int,
        token_id: str | None,
        model_type: ModelType | None,
        search: str | None = None,
        include_archived: bool = False,
    ) -> tuple[list[MlModelRead], int]:
        models, total = await self.models.page(
            limit=limit,
            offset=offset,
            token_id=token_id,
            model_type=model_type,
            search=search,
            include_archived=include_archived,
        )
        return await self._read_models(models), total

    async def _read_models(self, models: Sequence[MlModel]) -> list[MlModelRead]:
        ids = [model.id for model in models]
        latest = await self.models.latest_versions(ids)
        aliases = await self.aliases.current_for_models(ids)
        return [
            MlModelRead(
                name=model.name,
                model_type=model.model_type,
                token_id=model.token_id,
                description=model.description,
                tags=model.tags,
                benchmark=_model_benchmark(model),
                latest_version=latest.get(model.id),
                aliases=aliases[model.id],
                require_measurement=model.require_measurement,
                created_at=model.created_at,
                updated_at=model.updated_at,
                archived_at=model.archived_at,
            )
            for model in models
        ]

    async def get_version(self, model: MlModel, number: int) -> ModelVersion:
        version = await self.versions.get(model.id, number)
        if version is None:
            raise VersionNotFound(f"Model {model.name} has no version {number}")
        return version

    async def live_version(self, model: MlModel, number: int) -> ModelVersion:
        """A version that may take an alias or a test's traffic: neither it nor its model is
        archived."""
        live_model(model)
        version = await self.get_version(model, number)
        if version.archived_at is not None:
            raise VersionArchived(
                f"Version {number} of {model.name} is archived; unarchive it first"
            )
        return version

    # Archive: out of lists, no alias, no predictions; nothing is deleted

    async def archive_model(self, name: str, archived: bool) -> MlModelRead:
        model = await self.get_model(name)
        if archived and model.archived_at is None:
            tests = await AbTestRepository(self.session).live_using(model.id)
            if tests:
                raise InUse(
                    f"Model {model.name} has live A/B tests ({', '.join(tests)}); stop them first"
                )
            model.archived_at = utcnow()
        elif not archived:
            model.archived_at = None
        model.updated_at = utcnow()
        await self._save_change(model)  # predictions are refused or served again
        return await self.read_model(model)

    async def archive_version(self, name: str, number: int, archived: bool) -> VersionRead:
        model = await self.get_model(name)
        version = await self.get_version(model, number)
        if archived and version.archived_at is None:
            held = sorted(
                alias
                for alias, held_by in (await self.aliases.current(model.id)).items()
                if held_by == version.version
            )
            if held:
                raise InUse(
                    f"Version {version.version} of {model.name} holds {', '.join(held)}; move "
                    "or delete those aliases first"
                )
            tests = await AbTestRepository(self.session).live_using(model.id, version.version)
            if tests:
                raise InUse(
                    f"Version {version.version} of {model.name} is a variant of live A/B tests "
                    f"({', '.join(tests)}); stop them first"
                )
            version.archived_at = utcnow()
        elif not archived:
            version.archived_at = None
        version.updated_at = utcnow()
        await self._save_change(model)  # "latest" may have moved
        return await self.read_version(model, version)

    async def _save_change(self, model: MlModel) -> None:
        """Saved; once committed, every replica forgets what it resolved for the model."""
        changed(self.session, MODEL, model.name)
        await self.models.save()

    async def read_version(self, model: MlModel, version: ModelVersion) -> VersionRead:
        return (await self._read_versions(model, [version]))[0]

    async def list_versions(
        self, model: MlModel, *, limit: int, offset: int, include_archived: bool = False
    ) -> tuple[list[VersionRead], int]:
        versions, total = await self.versions.page(
            model.id, limit=limit, offset=offset, include_archived=include_archived
        )
        return await self._read_versions(model, versions), total

    async def _read_versions(
        self, model: MlModel, versions: Sequence[ModelVersion]
    ) -> list[VersionRead]:
        contributors = await self.versions.contributors([v.id for v in versions])
        parents = await self.versions.numbers([v.parent_id for v in versions if v.parent_id])
        by_version: dict[int, list[str]] = {}
        for alias, number in (await self.aliases.current(model.id)).items():
            by_version.setdefault(number, []).append(alias)
        return [
            version_read(
                model,
                v,
                contributors[v.id],
                parents.get(v.parent_id) if v.parent_id else None,
                by_version.get(v.version, []),
            )
            for v in versions
        ]

    # Description and tags (mirrored to MLflow first)

    async def update_model(
        self,
        model: MlModel,
        description: str | None,
        tags: dict[str, str] | None,
        require_measurement: bool | None = None,
    ) -> MlModelRead:
        if description is not None or tags is not None:
            await end_reads(self.session)
            await self.registry.update_model(model.name, description, tags)
        if require_measurement is not None:
            model.require_measurement = require_measurement
        if description is not None:
            model.description = description
        if tags is not None:
            model.tags = tags
        model.updated_at = utcnow()
        await self.models.save()
        return await self.read_model(model)

    async def update_version(
        self,
        model: MlModel,
        version: ModelVersion,
        description: str | None,
        tags: dict[str, str] | None,
    ) -> VersionRead:
        await end_reads(self.session)
        await self.registry.update_version(model.name, version.version, description, tags)
        if description is not None:
            version.description = description
        if tags is not None:
            version.tags = tags
        version.updated_at = utcnow()
        await self.models.save()
        return await self.read_version(model, version)

    async def download_artifact(self, model: MlModel, version: ModelVersion, workdir: Path) -> Path:
        """The version's model directory from MLflow, packed as a .tar.gz in `workdir`."""
        await end_reads(self.session)
        downloaded = await self.registry.download(version.source_uri, workdir / "download")
        root = artifacts.model_root(downloaded)
        archive = workdir / f"{model.name}-v{version.version}.tar.gz"
        return await asyncio.to_thread(artifacts.pack, root, archive)

    # Compare

    async def compare(self, model: MlModel, base: int, candidate: int) -> Comparison:
        base_version = await self.get_version(model, base)
        candidate_version = await self.get_version(model, candidate)
        benchmark = _model_benchmark(model)
        deltas = compare_metrics(
            base_version.metrics,
            candidate_version.metrics,
            benchmark.metric,
            benchmark.direction,
            benchmark.family,
        )
        return Comparison(
            model=model.name,
            base=base,
            candidate=candidate,
            primary_metric=benchmark.metric,
            metrics={name: MetricComparison.of(d) for name, d in deltas.items()},
        )


def live_model(model: MlModel) -> MlModel:
    """The model, unless it is archived (then it takes no version, alias or test)."""
    if model.archived_at is not None:
        raise ModelArchived(f"Model {model.name} is archived; unarchive it first")
    return model


def version_read(
    model: MlModel,
    v: ModelVersion,
    contributors: Sequence[VersionContributor | Share],
    parent_version: int | None,
    aliases: list[str],
) -> VersionRead:
    return VersionRead(
        model=model.name,
        version=v.version,
        kind=v.kind,
        model_type=model.model_type,
        token_id=model.token_id,
        description=v.description,
        tags=v.tags,
        metrics=v.metrics,
        metric_stds=v.metric_stds,
        dataset=Dataset(hash=v.dataset_hash, num_samples=v.dataset_num_samples),
        benchmark=_version_benchmark(v),
        parent_version=parent_version,
        aliases=aliases,
        created_at=v.created_at,
        artifact=ArtifactRead(
            digest=v.artifact_digest, source_uri=v.source_uri, mlflow_run_id=v.mlflow_run_id
        ),
        contributors=[
            ContributorRead(address=checksummed(c.address), weight_bps=c.weight_bps)
            for c in sorted(contributors, key=lambda c: (-c.weight_bps, c.address))
        ],
        delta={name: MetricDeltaRead(**d) for name, d in v.delta.items()} if v.delta else None,
        deltaone=DeltaOneRead.model_validate(v.deltaone) if v.deltaone else None,
        attestation_id=v.attestation_id,
        archived_at=v.archived_at,
        signature=v.input_signature,
    )


def _model_benchmark(model: MlModel) -> Benchmark:
    return Benchmark(
        metric=model.benchmark_metric,
        direction=model.benchmark_direction,
        family=model.benchmark_family,
    )


def _version_benchmark(version: ModelVersion) -> Benchmark:
    return Benchmark(
        metric=version.benchmark_metric,
        direction=version.benchmark_direction,
        family=version.benchmark_family,
    )
