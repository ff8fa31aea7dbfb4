"""Registering a version: everything checked before MLflow is touched (reads, then the
transaction ends); the artifact fetched, measured and published to MLflow holding no transaction;
then one short transaction with the version, its lineage edge, delta, DeltaOne decision and
attestation.

Rules: docs/reference/specification.md#registration, docs/reference/specification.md#deltaone."""

from __future__ import annotations

import asyncio
import re
import tempfile
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.adapters import artifacts
from app.adapters.memory import MODEL, changed
from app.adapters.registry import Publication, Published, Registry
from app.core.config import Settings
from app.core.errors import (
    BenchmarkRetired,
    InvalidAddress,
    InvalidArtifact,
    MeasurementQuotaExceeded,
    ModelNotFound,
    ModelTypeMismatch,
    RegistryRejected,
    TokenIdTaken,
    ValidationFailed,
    VersionNotFound,
)
from app.core.security import Principal
from app.core.vocabulary import PRODUCTION, Family, ModelType, VersionKind
from app.db.base import utcnow
from app.db.models import Benchmark as HeldBenchmark
from app.db.models import MlModel, ModelVersion, VersionContributor
from app.db.repositories.benchmarks import BenchmarkRepository
from app.db.repositories.ml_models import AliasRepository, MlModelRepository, VersionRepository
from app.db.session import end_reads
from app.rules.contributors import basis_points, checksummed, normalize_address
from app.rules.deltaone import Measured, Policy, Side, decide
from app.rules.deltas import compare_metrics
from app.schemas.ml_models import (
    Benchmark,
    VersionMetadata,
    VersionRead,
)
from app.services.attestations import AttestationService, decision_record
from app.services.evaluation import EvaluationService
from app.services.ml_models import MlModelService, live_model, version_read


@dataclass(frozen=True)
class _Plan:
    """What a registration found before touching MLflow (see `_plan`)."""

    request: VersionMetadata
    model: MlModel | None
    benchmark: Benchmark
    parent: ModelVersion | None
    contributors: list[tuple[str, float, int]]
    model_type: ModelType
    token_id: str | None
    held: HeldBenchmark | None


@dataclass(frozen=True)
class _Built:
    """What publishing left: MLflow's version, the files' digest and signature, the measurement."""

    published: Published
    digest: str
    signature: list[dict[str, Any]] | None
    measured: Measured | None


class RegistrationService:
    def __init__(
        self,
        session: AsyncSession,
        registry: Registry,
        settings: Settings,
        attestations: AttestationService,
        ml_models: MlModelService,
        evaluation: EvaluationService | None = None,
    ) -> None:
        self.session = session
        self.evaluation = evaluation  # measures improvements on held benchmarks
        self.benchmarks = BenchmarkRepository(session)
        self.models = MlModelRepository(session)
        self.versions = VersionRepository(session)
        self.aliases = AliasRepository(session)
        self.registry = registry
        self.settings = settings
        self.attestations = attestations
        self.ml_models = ml_models

    async def register_version(
        self,
        request: VersionMetadata,
        artifact: Path | str,
        actor: Principal,
        request_key: str | None,
        published: Published | None = None,
    ) -> VersionRead:
        """`artifact` is an uploaded archive on disk or an MLflow source URI. Everything is
        checked before MLflow is touched; MLflow goes first, holding no transaction, then the
        rows, in one short transaction. A version already in MLflow (`published`, when
        importing a registry) is recorded without writing to MLflow. With a `request_key` (from
        an Idempotency-Key), MLflow objects an earlier attempt left are found by it and reused."""
        plan = await self._plan(request, measure=published is None)
        # Fetching, measuring and publishing take seconds to minutes: no transaction is held
        # across them (a hung MLflow must not leave connections idle in transaction).
        await end_reads(self.session)
        built = await self._publish(plan, artifact, request_key, published)
        now = utcnow()
        model = await self._upsert_model(plan, now)
        if request_key is not None:  # a retry may find the rows an earlier attempt wrote
            existing = await self.versions.get(model.id, built.published.version)
            if existing is not None:
                return await self.ml_models.read_version(model, existing)
        version, rows = self._new_version(plan, built, model, actor, now)
        if plan.parent is not None:
            # No cycle check: the child is new, so it cannot be an ancestor of its parent.
            await self._judge(
                model, version, plan.parent, rows, plan.benchmark, now, built.measured
            )
        await self.versions.add(version, rows)  # writes the attestation and what points to it
        changed(self.session, MODEL, model.name)  # "latest" moved
        parent_number = plan.parent.version if plan.parent else None
        return version_read(model, version, rows, parent_number, aliases=[])

    async def _plan(self, request: VersionMetadata, *, measure: bool) -> _Plan:
        """Every check that needs no artifact, before MLflow is touched: the model (live), its
        benchmark and metrics, the parent, the contributors' split, the model type and the
        token id, and the held benchmark the candidate will be measured on."""
        model = await self.models.get_by_name(request.name)
        if model is not None:
            live_model(model)  # an archived model takes no new version
        benchmark = self._benchmark(request, model)
        self._check_metrics(request, benchmark)
        if request.kind == VersionKind.BASELINE:
            named = await self.benchmarks.get(request.dataset.hash)
            if named is not None and named.retired_at is not None:
                raise BenchmarkRetired(
                    f"Benchmark {named.hash} was retired; a new baseline names a new benchmark"
                )
        parent = await self._parent(request, model)
        contributors = self._contributors(request)
        model_type = self._model_type(request, model)
        if request.token_id is not None:
            owner = await self.models.get_by_token_id(request.token_id)
            if owner is not None and owner.name != request.name:
                raise TokenIdTaken(f"token_id {request.token_id} belongs to model {owner.name}")
            if model is not None and model.token_id not in (None, request.token_id):
                raise ValidationFailed.at(
                    ["body", "token_id"], f"the model's token_id is {model.token_id}"
                )
        held = await self._held(request, parent) if parent is not None and measure else None
        return _Plan(
            request=request,
            model=model,
            benchmark=benchmark,
            parent=parent,
            contributors=contributors,
            model_type=model_type,
            token_id=request.token_id or (model.token_id if model else None),
            held=held,
        )

    async def _publish(
        self,
        plan: _Plan,
        artifact: Path | str,
        request_key: str | None,
        published: Published | None,
    ) -> _Built:
        """The artifact fetched, digested, its signature read, measured against the parent on
        the held benchmark (if any) and published to MLflow (unless it already is): no
        database work, outside any transaction."""
        request = plan.request
        with tempfile.TemporaryDirectory(prefix="hokusai-artifact-") as workdir:
            model_dir, run_id = await self._fetch_artifact(artifact, Path(workdir))
            digest = await asyncio.to_thread(artifacts.digest, model_dir)
            signature = await asyncio.to_thread(artifacts.input_signature, model_dir)
            measured = None
            if plan.held is not None and plan.parent is not None:
                measured = await self._measure(
                    plan.held, plan.benchmark, plan.parent, model_dir, digest
                )
            published = published or await self.registry.publish(
                Publication(
                    name=request.name,
                    request_key=request_key or uuid.uuid4().hex,
                    retry=request_key is not None,
                    model_tags=_model_tags(plan.model_type, plan.token_id, plan.benchmark),
                    version_tags=_version_tags(
                        request,
                        plan.benchmark,
                        plan.token_id,
                        plan.parent,
                        plan.contributors,
                        digest,
                    ),
                    metrics=request.metrics,
                    description=request.description,
                    model_dir=model_dir if isinstance(artifact, Path) else None,
                    source_uri=artifact if isinstance(artifact, str) else None,
                    run_id=run_id,
                )
            )
        return _Built(published, digest, signature, measured)

    async def _upsert_model(self, plan: _Plan, now: datetime) -> MlModel:
        """The model's row, locked until commit (one chain, one cooldown at a time), or a new
        one; its benchmark (from a baseline that names one) and token id brought up to date."""
        request, benchmark, model = plan.request, plan.benchmark, plan.model
        if model is not None:
            await self.models.lock(model)
        else:
            model = await self.models.add_if_absent(
                MlModel(
                    id=uuid.uuid4(),
                    name=request.name,
                    model_type=plan.model_type,
                    token_id=plan.token_id,
                    description=None,
                    tags={},
                    benchmark_metric=benchmark.metric,
                    benchmark_direction=benchmark.direction,
                    benchmark_family=benchmark.family,
                    require_measurement=False,
                    created_at=now,
                    updated_at=now,
                )
            )
            if model.model_type != plan.model_type:  # another request created it, differently
                raise ModelTypeMismatch(f"model {model.name} is a {model.model_type} model")
        if request.kind == VersionKind.BASELINE and request.benchmark is not None:
            model.benchmark_metric = benchmark.metric
            model.benchmark_direction = benchmark.direction
            model.benchmark_family = benchmark.family
        model.updated_at = now
        if model.token_id != plan.token_id:
            model.token_id = plan.token_id
            await self.models.save()  # a token id taken meanwhile is a 409, not a 500
        return model

    def _new_version(
        self, plan: _Plan, built: _Built, model: MlModel, actor: Principal, now: datetime
    ) -> tuple[ModelVersion, list[VersionContributor]]:
        """The version's row and its contributors' rows, not yet added."""
        request, benchmark, parent = plan.request, plan.benchmark, plan.parent
        version_id = uuid.uuid4()
        version = ModelVersion(
            id=version_id,
            model_id=model.id,
            version=built.published.version,
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
            artifact_digest=built.digest,
            input_signature=built.signature,
            source_uri=built.published.source_uri,
            mlflow_run_id=built.published.run_id,
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
            for address, weight, bps in plan.contributors
        ]
        return version, rows

    async def _judge(
        self,
        model: MlModel,
        version: ModelVersion,
        parent: ModelVersion,
        contributors: list[VersionContributor],
        benchmark: Benchmark,
        now: datetime,
        measured: Measured | None,
    ) -> None:
        """The DeltaOne decision and the signed attestation of an improved version, on measured
        values when the model's benchmark is held. Runs under the model's row lock (a new
        model's row is this transaction's own until commit): the cooldown and the attestation
        chain see one registration at a time."""
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
            measured=measured,
            measurement_required=model.require_measurement,
            identical_artifact=version.artifact_digest == parent.artifact_digest,
        )
        version.deltaone = decision_record(decision)
        version.deltaone_accepted = decision.accepted
        version.deltaone_reason = decision.reason
        version.deltaone_basis = decision.basis
        version.deltaone_gain_pp = (
            Decimal(repr(decision.gain_pp)) if decision.gain_pp is not None else None
        )
        await self.versions.add(version, contributors)  # the attestation refers to the version
        attestation = await self.attestations.attest(model, version, parent, contributors, decision)
        version.attestation_id = attestation.id
        for contributor in contributors:
            contributor.gain_pp = version.deltaone_gain_pp
            contributor.deltaone_accepted = decision.accepted
            contributor.basis = decision.basis
            contributor.attestation_id = attestation.id

    async def _held(self, request: VersionMetadata, parent: ModelVersion) -> HeldBenchmark | None:
        """The held benchmark the candidate will be measured on (the dataset its parent was
        measured on), within the contributors' quota; None when that dataset is not held here."""
        held = await self.benchmarks.get(parent.dataset_hash)
        if held is None or self.evaluation is None:
            return None
        await self._within_quota(request, held.hash)
        return held

    async def _measure(
        self,
        held: HeldBenchmark,
        benchmark: Benchmark,
        parent: ModelVersion,
        model_dir: Path,
        digest: str,
    ) -> Measured | None:
        """The candidate and its parent measured on the held benchmark (no database work: it
        runs outside any transaction)."""
        assert self.evaluation is not None  # _held found a benchmark only with an evaluator
        if digest == parent.artifact_digest:  # nothing to run: the same files
            return Measured(
                gain=0.0,
                ci_low=0.0,
                ci_high=0.0,
                parent_value=0.0,
                rows=held.rows,
                no_change=True,
                record={"basis": "measured", "dataset_hash": held.hash},
            )
        evaluation = await self.evaluation.evaluate(held, benchmark, parent, model_dir, digest)
        result = evaluation.bootstrap
        return Measured(
            gain=result.gain,
            ci_low=result.ci_low,
            ci_high=result.ci_high,
            parent_value=result.parent_value,
            rows=result.rows,
            no_change=evaluation.identical_predictions,
            record=evaluation.record(),
        )

    async def _within_quota(self, request: VersionMetadata, dataset_hash: str) -> None:
        """Measured values are a channel to the hidden labels: each contributor address gets
        `measured_submissions_per_day` of them per benchmark."""
        addresses = [normalize_address(c.address) for c in request.contributors or []]
        if not addresses:
            return
        since = utcnow() - timedelta(days=1)
        counts = await self.versions.measured_submissions(addresses, dataset_hash, since)
        limit = self.settings.measured_submissions_per_day
        over = sorted(address for address, count in counts.items() if count >= limit)
        if over:
            raise MeasurementQuotaExceeded(
                f"{', '.join(over)} had {limit} measured submissions on this benchmark in the "
                "last 24 hours",
                headers={"Retry-After": "3600"},
            )

    def _model_type(self, request: VersionMetadata, model: MlModel | None) -> ModelType:
        if model is None:
            if request.model_type is None:
                raise ValidationFailed.at(["body", "model_type"], "required for a new model")
            return request.model_type
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
            raise ValidationFailed.at(
                ["body", "benchmark"], "required for the first baseline of a model"
            )
        return Benchmark(
            metric=model.benchmark_metric,
            direction=model.benchmark_direction,
            family=model.benchmark_family,
        )

    def _check_metrics(self, request: VersionMetadata, benchmark: Benchmark) -> None:
        if benchmark.metric not in request.metrics:
            raise ValidationFailed.at(
                ["body", "metrics"], f"the benchmark metric {benchmark.metric!r} is missing"
            )
        if benchmark.family == Family.PROPORTION:
            value = request.metrics[benchmark.metric]
            if not 0 <= value <= 1:
                raise ValidationFailed.at(
                    ["body", "metrics", benchmark.metric], "a proportion must lie between 0 and 1"
                )
        for name in request.metric_stds.keys() - request.metrics.keys():
            raise ValidationFailed.at(["body", "metric_stds", name], "no metric of that name")

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
                raise ValidationFailed.at(
                    ["body", "contributors", index, "address"], "duplicate address"
                )
            addresses.append(address)
        weights = [
            (a, Decimal(repr(c.weight)))
            for a, c in zip(addresses, request.contributors, strict=True)
        ]
        points = basis_points(weights)
        for index, address in enumerate(addresses):
            if points[address] == 0:
                raise ValidationFailed.at(
                    ["body", "contributors", index, "weight"],
                    "this weight gives the contributor 0 of 10000 basis points; every "
                    "contributor named must get at least 1",
                )
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
                max_entries=self.settings.max_artifact_entries,
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


def _delta(parent: ModelVersion, metrics: dict[str, float], benchmark: Benchmark) -> dict[str, Any]:
    deltas = compare_metrics(
        parent.metrics, metrics, benchmark.metric, benchmark.direction, benchmark.family
    )
    return {
        name: {key: value for key, value in asdict(d).items() if key != "better"}
        for name, d in deltas.items()
    }


def _model_tags(
    model_type: ModelType, token_id: str | None, benchmark: Benchmark
) -> dict[str, str]:
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
