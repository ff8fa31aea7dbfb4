"""Measuring an improvement on a held benchmark: the parent and the candidate each run in a
fresh sandboxed runner used for nothing else, on the benchmark's feature columns only (never the
labels), in chunks; the metric and the paired bootstrap are `hokusai.measure`'s. Nothing a model
prints or raises reaches a response: a model that fails is `evaluation_failed`, nothing more.

Rules: docs/reference/specification.md#held-benchmarks."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hokusai import measure

from app import __version__
from app.adapters import artifacts
from app.adapters.registry import Registry
from app.adapters.runners import RunnerGroup, Runners
from app.core.config import Settings
from app.core.errors import (
    EvaluationFailed,
    EvaluationUndefined,
    ModelFailed,
    ModelTimeout,
    ModelUnavailable,
)
from app.core.vocabulary import Family, MetricDirection
from app.db.models import Benchmark, ModelVersion
from app.schemas.ml_models import Benchmark as BenchmarkSpec
from app.services.benchmarks import BenchmarkService, read_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """Both versions measured on the same rows of a held benchmark."""

    benchmark: Benchmark
    bootstrap: measure.PairedBootstrap
    parent_predictions: str  # sha256 of each model's predictions
    candidate_predictions: str
    identical_predictions: bool

    def record(self) -> dict[str, Any]:
        """What the decision and the attestation record of the measurement."""
        import numpy
        import sklearn

        return {
            "basis": "measured",
            "dataset_hash": self.benchmark.hash,
            "label_column": self.benchmark.label_column,
            **self.bootstrap.describe(),
            "predictions_sha256": {
                "parent": self.parent_predictions,
                "candidate": self.candidate_predictions,
            },
            "versions": {
                "numpy": numpy.__version__,
                "scikit-learn": sklearn.__version__,
                "service": __version__,
            },
        }


class EvaluationService:
    def __init__(
        self,
        runners: Runners,
        registry: Registry,
        benchmarks: BenchmarkService,
        settings: Settings,
    ) -> None:
        self.runners = runners
        self.registry = registry
        self.benchmarks = benchmarks
        self.settings = settings

    async def evaluate(
        self,
        held: Benchmark,
        spec: BenchmarkSpec,
        parent: ModelVersion,
        candidate_dir: Path,
        candidate_digest: str,
    ) -> Evaluation:
        """Both versions on every row of `held`, scored by `spec`'s metric, within
        `HOKUSAI_EVALUATION_TIMEOUT_S`."""
        timeout_s = self.settings.evaluation_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                labels, features = await self._rows(held)
                m = _metric(spec, labels)
                parent_dir = await self.runners.stage(
                    parent.artifact_digest,
                    lambda staging: self._download(parent.source_uri, staging),
                    _digest,
                )
                candidate = await self.runners.stage(
                    candidate_digest, lambda staging: _copy(candidate_dir, staging), _digest
                )
                before = await self._predict(parent_dir, "parent", features)
                after = await self._predict(candidate, "candidate", features)
                bootstrap = await asyncio.to_thread(
                    _bootstrap, m, spec, labels, before, after, parent, held, self.settings
                )
        except TimeoutError as exc:
            raise EvaluationFailed(f"The evaluation did not finish within {timeout_s:g} s") from exc
        first, second = measure.predictions_digest(before), measure.predictions_digest(after)
        return Evaluation(held, bootstrap, first, second, first == second)

    async def _rows(self, held: Benchmark) -> tuple[Any, Any]:
        """The benchmark's labels and its feature columns (every other column)."""
        with tempfile.TemporaryDirectory(prefix="hokusai-evaluation-") as workdir:
            file = await self.benchmarks.file(held, Path(workdir))
            table = await asyncio.to_thread(read_table, file, held.format)
        return table[held.label_column].to_numpy(), table.drop(columns=[held.label_column])

    async def _download(self, source_uri: str, staging: Path) -> Path:
        return artifacts.model_root(await self.registry.download(source_uri, staging))

    async def _predict(self, model_dir: Path, which: str, features: Any) -> list[Any]:
        """The model's answers for every row, from a fresh runner that is stopped afterwards.
        The model's own errors are not passed on: only that it failed."""
        group = RunnerGroup(self.runners, model_dir, f"evaluation of the {which}", 0, 1)
        try:
            await group.start()
            wanted = [c.name for c in group.columns] if group.columns else list(features.columns)
            missing = [name for name in wanted if name not in features.columns]
            if missing:
                raise EvaluationFailed(
                    f"The {which}'s signature names columns the benchmark does not have: "
                    + ", ".join(missing[:20])
                )
            rows = features[wanted]
            answers: list[Any] = []
            for start in range(0, len(rows), measure.CHUNK_ROWS):
                chunk = rows.iloc[start : start + measure.CHUNK_ROWS].to_dict(orient="records")
                answers.extend(await group.call(chunk))
            return answers
        except (ModelFailed, ModelTimeout, ModelUnavailable) as exc:
            log.info("evaluation of the %s failed: %s", which, exc)
            raise EvaluationFailed(f"The {which} could not predict the benchmark's rows") from exc
        finally:
            await group.close()


def _metric(spec: BenchmarkSpec, labels: Any) -> measure.Metric:
    classes = sorted(set(labels.tolist())) if spec.family == Family.PROPORTION else None
    try:
        return measure.metric(spec.metric, classes)
    except measure.MeasurementError as exc:
        raise refused(exc) from exc


def _bootstrap(
    m: measure.Metric,
    spec: BenchmarkSpec,
    labels: Any,
    before: list[Any],
    after: list[Any],
    parent: ModelVersion,
    held: Benchmark,
    settings: Settings,
) -> measure.PairedBootstrap:
    try:
        return measure.paired_bootstrap(
            m,
            labels,
            measure.prepared(m, labels, before),
            measure.prepared(m, labels, after),
            higher_is_better=spec.direction == MetricDirection.HIGHER_IS_BETTER,
            proportion=spec.family == Family.PROPORTION,
            seed=measure.seed(parent.artifact_digest, held.hash),
            draws=settings.evaluation_bootstrap_draws,
        )
    except measure.MeasurementError as exc:
        raise refused(exc) from exc


async def _digest(root: Path) -> str:
    return await asyncio.to_thread(artifacts.digest, root)


async def _copy(source: Path, staging: Path) -> Path:
    return Path(await asyncio.to_thread(shutil.copytree, source, staging))


def refused(exc: measure.MeasurementError) -> EvaluationFailed:
    if exc.code == "evaluation_undefined":
        return EvaluationUndefined(str(exc))
    return EvaluationFailed(str(exc))
