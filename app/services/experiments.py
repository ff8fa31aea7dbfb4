"""The MLflow experiments and runs behind registrations, and run comparison with the delta rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.adapters.registry import Registry
from app.core.errors import ExperimentNotFound, RegistryRejected, RunNotFound
from app.rules.deltas import compare_metrics
from app.schemas.experiments import ExperimentRead, RunCompare, RunComparison, RunRead
from app.schemas.ml_models import MetricComparison
from app.services.ml_models import MlModelService


def _time(millis: int | None) -> datetime | None:
    return datetime.fromtimestamp(millis / 1000, UTC) if millis else None


def experiment_read(experiment: Any) -> ExperimentRead:
    return ExperimentRead(
        experiment_id=str(experiment.experiment_id),
        name=experiment.name,
        artifact_location=experiment.artifact_location,
        lifecycle_stage=experiment.lifecycle_stage,
        tags=dict(experiment.tags),
        created_at=_time(experiment.creation_time),
    )


def run_read(run: Any) -> RunRead:
    return RunRead(
        run_id=run.info.run_id,
        run_name=run.info.run_name,
        experiment_id=str(run.info.experiment_id),
        status=run.info.status,
        start_time=_time(run.info.start_time),
        end_time=_time(run.info.end_time),
        metrics=dict(run.data.metrics),
        params=dict(run.data.params),
        tags={k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
    )


class ExperimentService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def list_experiments(
        self, *, limit: int, offset: int
    ) -> tuple[list[ExperimentRead], int]:
        experiments, total = await self.registry.list_experiments(limit, offset)
        return [experiment_read(e) for e in experiments], total

    async def list_runs(
        self, experiment_id: str, *, limit: int, offset: int
    ) -> tuple[list[RunRead], int]:
        try:
            await self.registry.get_experiment(experiment_id)
        except RegistryRejected as exc:
            raise ExperimentNotFound(f"No experiment {experiment_id}") from exc
        runs, total = await self.registry.list_runs(experiment_id, limit, offset)
        return [run_read(run) for run in runs], total

    async def run_metrics(self, run_id: str) -> dict[str, float]:
        try:
            run = await self.registry.get_run(run_id)
        except RegistryRejected as exc:
            raise RunNotFound(f"No run {run_id}") from exc
        return dict(run.data.metrics)

    async def compare(self, request: RunCompare, versions: MlModelService) -> RunComparison:
        """The candidate run against a baseline run, or against a registered version (its
        metrics as registered), with the same delta rules as registration."""
        if request.baseline_run_id is not None:
            baseline = request.baseline_run_id
            baseline_metrics = await self.run_metrics(request.baseline_run_id)
        else:
            assert request.model is not None  # the schema requires one baseline or the other
            assert request.version is not None
            model = await versions.get_model(request.model)
            baseline_metrics = (await versions.get_version(model, request.version)).metrics
            baseline = f"models:/{request.model}/{request.version}"
        candidate = await self.run_metrics(request.candidate_run_id)
        metric = request.metric
        deltas = compare_metrics(baseline_metrics, candidate, metric, request.direction)
        if metric is not None:
            deltas = {name: d for name, d in deltas.items() if name == metric}
        return RunComparison(
            baseline=baseline,
            candidate=request.candidate_run_id,
            primary_metric=metric,
            metrics={name: MetricComparison.of(d) for name, d in deltas.items()},
        )
