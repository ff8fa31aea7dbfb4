"""Models and versions: registration (MLflow first, then one transaction), reads, aliases with
their history, rollback and compare.

Rules: docs/reference/specification.md#registration,
docs/reference/specification.md#aliases-rollback-and-compare."""

from __future__ import annotations

import asyncio
import re
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.adapters.memory import MODEL, changed
from app.adapters.registry import Publication, Published, Registry
from app.core.config import Settings
from app.core.errors import (
    AliasNotFound,
    InvalidAddress,
    InvalidArtifact,
    ModelNotFound,
    ModelTypeMismatch,
    RegistryRejected,
    RollbackUnavailable,
    TokenIdTaken,
    ValidationFailed,
    VersionNotFound,
)
from app.core.security import Principal
from app.db.base import utcnow
from app.db.models import AliasEvent, MlModel, ModelVersion, VersionContributor
from app.db.repositories.ml_models import AliasRepository, MlModelRepository, VersionRepository
from app.schemas.ml_models import (
    PRODUCTION,
    AliasAt,
    AliasEventRead,
    AliasRead,
    ArtifactRead,
    Benchmark,
    Comparison,
    ContributorRead,
    Dataset,
    DeltaOneRead,
    Family,
    MetricDeltaRead,
    MetricDirection,
    MlModelRead,
    ModelType,
    VersionKind,
    VersionMetadata,
    VersionRead,
)
from app.services import artifacts
from app.services.attestations import AttestationService, decision_record
from app.services.contributors import basis_points, checksummed, normalize_address
from app.services.deltaone import Policy, Side, decide
from app.services.deltas import compare_metrics, comparison
from app.services.signing import Signer


def invalid(loc: Sequence[str | int], message: str) -> ValidationFailed:
    where = ".".join(str(part) for part in loc)
    return ValidationFailed(
        f"Invalid request: {where}: {message}",
        errors=[{"loc": ["body", *loc], "msg": message, "type": "value_error"}],
    )


class MlModelService:
    def __init__(
        self, session: AsyncSession, registry: Registry, settings: Settings, signer: Signer
    ) -> None:
        self.session = session
        self.models = MlModelRepository(session)
        self.versions = VersionRepository(session)
        self.aliases = AliasRepository(session)
        self.attestations = AttestationService(session, signer)
        self.registry = registry
        self.settings = settings

    # Registration

    async def register_version(
        self,
        request: VersionMetadata,
        artifact: Path | str,
        actor: Principal,
        request_key: str | None,
        published: Published | None = None,
    ) -> VersionRead:
        """`artifact` is an uploaded archive on disk or an MLflow source URI. Everything is
        checked before MLflow is touched; MLflow goes first, then the rows, in the request's one
        transaction. A version already in MLflow (`published`, when importing a registry) is
        recorded without writing to MLflow. With a `request_key` (from an Idempotency-Key),
        MLflow objects an earlier attempt left are found by it and reused."""
        model = await self.models.get_by_name(request.name)
        benchmark = self._benchmark(request, model)
        self._check_metrics(request, benchmark)
        parent = await self._parent(request, model)
        contributors = self._contributors(request)
        model_type = self._model_type(request, model)
        if request.token_id is not None:
            owner = await self.models.get_by_token_id(request.token_id)
            if owner is not None and owner.name != request.name:
                raise TokenIdTaken(f"token_id {request.token_id} belongs to model {owner.name}")
            if model is not None and model.token_id not in (None, request.token_id):
                raise invalid(["token_id"], f"the model's token_id is {model.token_id}")

        with tempfile.TemporaryDirectory(prefix="hokusai-artifact-") as workdir:
            model_dir, run_id = await self._fetch_artifact(artifact, Path(workdir))
            digest = await asyncio.to_thread(artifacts.digest, model_dir)
            token_id = request.token_id or (model.token_id if model else None)
            published = published or await self.registry.publish(
                Publication(
                    name=request.name,
                    request_key=request_key or uuid.uuid4().hex,
                    retry=request_key is not None,
                    model_tags=_model_tags(model_type, token_id, benchmark),
                    version_tags=_version_tags(
                        request, benchmark, token_id, parent, contributors, digest
                    ),
                    metrics=request.metrics,
                    description=request.description,
                    model_dir=model_dir if isinstance(artifact, Path) else None,
                    source_uri=artifact if isinstance(artifact, str) else None,
                    run_id=run_id,
                )
            )

        now = utcnow()
        if model is None:
            model = await self.models.add_if_absent(
                MlModel(
                    id=uuid.uuid4(),
                    name=request.name,
                    model_type=model_type,
                    token_id=token_id,
                    description=None,
                    tags={},
                    benchmark_metric=benchmark.metric,
                    benchmark_direction=benchmark.direction,
                    benchmark_family=benchmark.family,
                    created_at=now,
                    updated_at=now,
                )
            )
            if model.model_type != model_type:  # another request created it first, differently
                raise ModelTypeMismatch(f"model {model.name} is a {model.model_type} model")
        if request.kind == VersionKind.BASELINE and request.benchmark is not None:
            model.benchmark_metric = benchmark.metric
            model.benchmark_direction = benchmark.direction
            model.benchmark_family = benchmark.family
        model.updated_at = now
        if model.token_id != token_id:
            model.token_id = token_id
            await self.models.save()  # a token id taken meanwhile is a 409, not a 500

        if request_key is not None:  # a retry may find the rows an earlier attempt wrote
            existing = await self.versions.get(model.id, published.version)
            if existing is not None:
                return await self.read_version(model, existing)
        version_id = uuid.uuid4()
        version = ModelVersion(
            id=version_id,
            model_id=model.id,
            version=published.version,
            kind=request.kind,
            description=request.description,
            tags=request.tags,
            metrics=request.metrics,
            metric_stds=request.metric_stds,
            dataset_hash=request.dataset.hash,
            dataset_num_samples=request.dataset.num_samples,
            benchmark_metric=benchmark.metric,
            benchmark_direction=benchmark.direction,
            benchmark_family=benchmark.family,
            primary_metric_value=request.metrics.get(benchmark.metric),
            parent_id=parent.id if parent else None,
            root_id=parent.root_id if parent else version_id,
            delta=_delta(parent, request.metrics, benchmark) if parent else None,
            artifact_digest=digest,
            source_uri=published.source_uri,
            mlflow_run_id=published.run_id,
            created_by=actor.name,
            created_at=now,
            updated_at=now,
        )
        rows = [
            VersionContributor(
                version_id=version.id,
                address=address,
                weight=weight,
                weight_bps=bps,
                model_id=model.id,
                version=version.version,
                created_at=now,
            )
            for address, weight, bps in contributors
        ]
        if parent is not None:
            # No cycle check: the child is new, so it cannot be an ancestor of its parent.
            await self.models.lock(model)
            await self._judge(model, version, parent, rows, benchmark, now)
        await self.versions.add(version, rows)  # writes the attestation and what points to it
        changed(self.session, MODEL, model.name)  # "latest" moved
        return _version_read(model, version, rows, parent.version if parent else None, aliases=[])

    async def _judge(
        self,
        model: MlModel,
        version: ModelVersion,
        parent: ModelVersion,
        contributors: list[VersionContributor],
        benchmark: Benchmark,
        now: datetime,
    ) -> None:
        """The DeltaOne decision and the signed attestation of an improved version. Runs under
        the model's row lock: the cooldown and the attestation chain see one registration at
        a time."""
        since = now - timedelta(seconds=self.settings.deltaone_cooldown_s)
        metric = benchmark.metric
        decision = decide(
            metric,
            benchmark.direction,
            benchmark.family,
            Side(
                parent.metrics[metric],
                parent.dataset_num_samples,
                parent.dataset_hash,
                parent.metric_stds.get(metric),
            ),
            Side(
                version.metrics[metric],
                version.dataset_num_samples,
                version.dataset_hash,
                version.metric_stds.get(metric),
            ),
            cooldown_active=await self.versions.accepted_since(
                model.id, version.dataset_hash, since
            ),
            policy=Policy(self.settings.deltaone_threshold_pp, self.settings.deltaone_min_samples),
            now=now,
        )
        version.deltaone = decision_record(decision)
        version.deltaone_accepted = decision.accepted
        version.deltaone_reason = decision.reason.value
        version.deltaone_gain_pp = (
            Decimal(repr(decision.gain_pp)) if decision.gain_pp is not None else None
        )
        await self.versions.add(version, contributors)  # the attestation refers to the version
        attestation = await self.attestations.attest(model, version, parent, contributors, decision)
        version.attestation_id = attestation.id
        for contributor in contributors:
            contributor.gain_pp = version.deltaone_gain_pp
            contributor.deltaone_accepted = decision.accepted
            contributor.attestation_id = attestation.id

    def _model_type(self, request: VersionMetadata, model: MlModel | None) -> str:
        if model is None:
            if request.model_type is None:
                raise invalid(["model_type"], "required for a new model")
            return request.model_type.value
        if request.model_type is not None and request.model_type != model.model_type:
            raise ModelTypeMismatch(
                f"model {model.name} is a {model.model_type} model, not {request.model_type}",
                errors=[{"loc": ["body", "model_type"], "msg": "differs", "type": "mismatch"}],
            )
        return model.model_type

    def _benchmark(self, request: VersionMetadata, model: MlModel | None) -> Benchmark:
        if model is None and request.kind == VersionKind.IMPROVED:
            raise ModelNotFound(
                f"No model named {request.name}; register a baseline first",
                errors=[{"loc": ["body", "name"], "msg": "unknown model", "type": "not_found"}],
            )
        if request.benchmark is not None:
            return request.benchmark
        if model is None:
            raise invalid(["benchmark"], "required for the first baseline of a model")
        return Benchmark(
            metric=model.benchmark_metric,
            direction=MetricDirection(model.benchmark_direction),
            family=Family(model.benchmark_family),
        )

    def _check_metrics(self, request: VersionMetadata, benchmark: Benchmark) -> None:
        if benchmark.metric not in request.metrics:
            raise invalid(["metrics"], f"the benchmark metric {benchmark.metric!r} is missing")
        if benchmark.family == Family.PROPORTION:
            value = request.metrics[benchmark.metric]
            if not 0 <= value <= 1:
                raise invalid(
                    ["metrics", benchmark.metric], "a proportion must lie between 0 and 1"
                )
        for name in request.metric_stds.keys() - request.metrics.keys():
            raise invalid(["metric_stds", name], "no metric of that name")

    async def _parent(self, request: VersionMetadata, model: MlModel | None) -> ModelVersion | None:
        if request.kind == VersionKind.BASELINE or model is None:
            return None
        if request.parent_version is not None:
            parent = await self.versions.get(model.id, request.parent_version)
            if parent is None:
                raise VersionNotFound(
                    f"Model {model.name} has no version {request.parent_version}",
                    errors=[
                        {"loc": ["body", "parent_version"], "msg": "unknown", "type": "not_found"}
                    ],
                )
            return parent
        production = await self.aliases.get(model.id, PRODUCTION)
        if production is not None:
            return await self.versions.get_by_id(production.version_id)
        parent = await self.versions.latest_baseline(model.id)
        if parent is None:
            raise VersionNotFound(f"Model {model.name} has no baseline to improve on")
        return parent

    def _contributors(self, request: VersionMetadata) -> list[tuple[str, float, int]]:
        if not request.contributors:
            return []
        addresses: list[str] = []
        for index, contributor in enumerate(request.contributors):
            try:
                address = normalize_address(contributor.address)
            except InvalidAddress as exc:  # the same error, now naming the field
                loc = ["body", "contributors", index, "address"]
                raise InvalidAddress(
                    exc.detail, errors=[{"loc": loc, "msg": exc.detail, "type": "invalid_address"}]
                ) from exc
            if address in addresses:
                raise invalid(["contributors", index, "address"], "duplicate address")
            addresses.append(address)
        weights = [
            (a, Decimal(repr(c.weight)))
            for a, c in zip(addresses, request.contributors, strict=True)
        ]
        points = basis_points(weights)
        return [
            (address, contributor.weight, points[address])
            for address, contributor in zip(addresses, request.contributors, strict=True)
        ]

    async def _fetch_artifact(self, artifact: Path | str, workdir: Path) -> tuple[Path, str | None]:
        """The model directory (unpacked upload or download of the URI) and the run behind it."""
        if isinstance(artifact, Path):
            root = await asyncio.to_thread(
                artifacts.unpack,
                artifact,
                workdir / "model",
                max_bytes=self.settings.max_unpacked_bytes,
                max_ratio=self.settings.max_artifact_ratio,
            )
            return root, None
        if ".." in re.split(r"[/\\]", artifact):
            raise InvalidArtifact(f"source_uri {artifact} climbs out of its location ('..')")
        try:
            run_id = await self.registry.run_id_of(artifact)
            downloaded = await self.registry.download(artifact, workdir / "download")
        except RegistryRejected as exc:
            raise InvalidArtifact(f"MLflow refused source_uri {artifact}: {exc.message}") from exc
        return artifacts.model_root(downloaded), run_id

    # Reads

    async def get_model(self, name: str) -> MlModel:
        model = await self.models.get_by_name(name)
        if model is None:
            raise ModelNotFound(f"No model named {name}")
        return model

    async def read_model(self, model: MlModel) -> MlModelRead:
        return (await self._read_models([model]))[0]

    async def list_models(
        self, *, limit: int, offset: int, token_id: str | None, model_type: ModelType | None
    ) -> tuple[list[MlModelRead], int]:
        models, total = await self.models.page(
            limit=limit, offset=offset, token_id=token_id, model_type=model_type
        )
        return await self._read_models(models), total

    async def _read_models(self, models: Sequence[MlModel]) -> list[MlModelRead]:
        ids = [model.id for model in models]
        latest = await self.models.latest_versions(ids)
        aliases = await self.aliases.current_for_models(ids)
        return [
            MlModelRead(
                name=model.name,
                model_type=ModelType(model.model_type),
                token_id=model.token_id,
                description=model.description,
                tags=model.tags,
                benchmark=_model_benchmark(model),
                latest_version=latest.get(model.id),
                aliases=aliases[model.id],
                created_at=model.created_at,
                updated_at=model.updated_at,
            )
            for model in models
        ]

    async def get_version(self, model: MlModel, number: int) -> ModelVersion:
        version = await self.versions.get(model.id, number)
        if version is None:
            raise VersionNotFound(f"Model {model.name} has no version {number}")
        return version

    async def read_version(self, model: MlModel, version: ModelVersion) -> VersionRead:
        return (await self._read_versions(model, [version]))[0]

    async def list_versions(
        self, model: MlModel, *, limit: int, offset: int
    ) -> tuple[list[VersionRead], int]:
        versions, total = await self.versions.page(model.id, limit=limit, offset=offset)
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
            _version_read(
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
        self, model: MlModel, description: str | None, tags: dict[str, str] | None
    ) -> MlModelRead:
        await self.registry.update_model(model.name, description, tags)
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
        downloaded = await self.registry.download(version.source_uri, workdir / "download")
        root = artifacts.model_root(downloaded)
        archive = workdir / f"{model.name}-v{version.version}.tar.gz"
        return await asyncio.to_thread(artifacts.pack, root, archive)

    # Aliases

    async def list_aliases(self, model: MlModel) -> dict[str, int]:
        return await self.aliases.current(model.id)

    async def set_alias(
        self, name: str, alias: str, number: int, reason: str | None, actor: Principal
    ) -> AliasRead:
        """Point `alias` at a version: MLflow's alias first, then the row and a history event.
        The model row is locked, so concurrent moves of one model's aliases line up."""
        model = await self._locked(name)
        target = await self.get_version(model, number)
        current = await self.aliases.get(model.id, alias)
        now = utcnow()
        if current is not None and current.version_id == target.id:
            return AliasRead(alias=alias, version=number, updated_at=current.updated_at)
        from_version = None
        if current is not None:
            from_version = (await self.versions.numbers([current.version_id]))[current.version_id]
        await self.registry.set_alias(model.name, alias, number)
        await self.aliases.put(model.id, alias, target.id, now)
        changed(self.session, MODEL, model.name)
        await self.aliases.record(
            AliasEvent(
                id=uuid.uuid4(),
                model_id=model.id,
                alias=alias,
                from_version=from_version,
                to_version=number,
                reason=reason,
                actor=actor.name,
                at=now,
            )
        )
        return AliasRead(alias=alias, version=number, updated_at=now)

    async def delete_alias(self, name: str, alias: str, actor: Principal) -> None:
        model = await self._locked(name)
        current = await self.aliases.get(model.id, alias)
        if current is None:
            raise AliasNotFound(f"Model {name} has no alias {alias}")
        numbers = await self.versions.numbers([current.version_id])
        await self.registry.delete_alias(model.name, alias)
        await self.aliases.remove(model.id, alias)
        changed(self.session, MODEL, model.name)
        await self.aliases.record(
            AliasEvent(
                id=uuid.uuid4(),
                model_id=model.id,
                alias=alias,
                from_version=numbers[current.version_id],
                to_version=None,
                reason=None,
                actor=actor.name,
                at=utcnow(),
            )
        )

    async def alias_history(self, model: MlModel, alias: str) -> list[AliasEventRead]:
        events = await self.aliases.history(model.id, alias)
        if not events:
            raise AliasNotFound(f"Model {model.name} has no alias {alias}, now or before")
        return [
            AliasEventRead(
                alias=e.alias,
                from_version=e.from_version,
                to_version=e.to_version,
                reason=e.reason,
                actor=e.actor,
                at=e.at,
            )
            for e in events
        ]

    async def alias_at(self, model: MlModel, alias: str, at: datetime) -> AliasAt:
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
            metrics={name: comparison(d) for name, d in deltas.items()},
        )


def _version_read(
    model: MlModel,
    v: ModelVersion,
    contributors: Sequence[Any],  # VersionContributor rows or (address, weight_bps) rows
    parent_version: int | None,
    aliases: list[str],
) -> VersionRead:
    return VersionRead(
        model=model.name,
        version=v.version,
        kind=VersionKind(v.kind),
        model_type=ModelType(model.model_type),
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
    )


def _model_benchmark(model: MlModel) -> Benchmark:
    return Benchmark(
        metric=model.benchmark_metric,
        direction=MetricDirection(model.benchmark_direction),
        family=Family(model.benchmark_family),
    )


def _version_benchmark(version: ModelVersion) -> Benchmark:
    return Benchmark(
        metric=version.benchmark_metric,
        direction=MetricDirection(version.benchmark_direction),
        family=Family(version.benchmark_family),
    )


def _delta(parent: ModelVersion, metrics: dict[str, float], benchmark: Benchmark) -> dict[str, Any]:
    deltas = compare_metrics(
        parent.metrics, metrics, benchmark.metric, benchmark.direction, benchmark.family
    )
    return {
        name: {key: value for key, value in asdict(d).items() if key != "better"}
        for name, d in deltas.items()
    }


def _model_tags(model_type: str, token_id: str | None, benchmark: Benchmark) -> dict[str, str]:
    tags = {"model_type": model_type, "benchmark_metric": benchmark.metric}
    if token_id:
        tags["hokusai_token_id"] = token_id
    return tags


def _version_tags(
    request: VersionMetadata,
    benchmark: Benchmark,
    token_id: str | None,
    parent: ModelVersion | None,
    contributors: list[tuple[str, float, int]],
    digest: str,
) -> dict[str, str]:
    """The service's own tags plus the upstream SDK's names, for MLflow UI users."""
    tags = {
        **request.tags,
        "benchmark_metric": benchmark.metric,
        "benchmark_value": repr(request.metrics[benchmark.metric]),
        "is_baseline": str(request.kind == VersionKind.BASELINE).lower(),
        "hokusai.kind": request.kind.value,
        "hokusai.dataset_hash": request.dataset.hash,
        "hokusai.artifact_digest": digest,
    }
    if token_id:
        tags["hokusai_token_id"] = token_id
    if parent is not None:
        tags["baseline_id"] = str(parent.version)
    if contributors:
        top = max(contributors, key=lambda c: (c[2], c[0]))
        tags["contributor_address"] = checksummed(top[0])
        tags["hokusai.contributors"] = str(len(contributors))
    return tags
