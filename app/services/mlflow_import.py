"""Importing an MLflow registry the upstream `hokusai` SDK populated: its versions are recorded in
Postgres (lineage, deltas, DeltaOne decisions, attestations) without creating anything in MLflow.
What the upstream tags cannot say (the dataset, the benchmark's direction and family) comes from
the caller; a version that still lacks something is reported and skipped, never invented."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from app.adapters.registry import Published, RegisteredVersion
from app.core.errors import AppError, first_line
from app.core.security import Principal, Scope
from app.db.repositories.ml_models import MlModelRepository, VersionRepository
from app.schemas.ml_models import VersionMetadata
from app.wiring import Resources, Services

IMPORTER = Principal(uuid.UUID(int=0), "import-mlflow", frozenset({Scope.ADMIN}))


@dataclass(frozen=True)
class ImportDefaults:
    """What upstream's tags do not hold."""

    dataset_hash: str | None = None
    num_samples: int | None = None
    direction: str | None = None
    family: str | None = None
    model_type: str = "custom"


@dataclass(frozen=True)
class Outcome:
    model: str
    version: int
    action: str  # "imported", "would import", "skipped", "already imported"
    reason: str = ""


class MlflowImport:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def run(
        self, names: Sequence[str] | None, defaults: ImportDefaults, *, dry_run: bool
    ) -> list[Outcome]:
        found = await self.resources.registry.registered_versions(names)
        by_model: dict[str, list[RegisteredVersion]] = {}
        for version in found:
            by_model.setdefault(version.name, []).append(version)
        return [await self._one(v, by_model[v.name], defaults, dry_run) for v in found]

    async def _one(
        self,
        found: RegisteredVersion,
        siblings: list[RegisteredVersion],
        defaults: ImportDefaults,
        dry_run: bool,
    ) -> Outcome:
        def outcome(action: str, reason: str = "") -> Outcome:
            return Outcome(found.name, found.version, action, reason)

        async with self.resources.unit_of_work() as session:
            model = await MlModelRepository(session).get_by_name(found.name)
            if model is not None and await VersionRepository(session).get(model.id, found.version):
                return outcome("already imported")
            try:
                request = _request(found, siblings, defaults)
            except (ValueError, RecursionError, ValidationError) as exc:  # tags anyone wrote
                return outcome("skipped", first_line(exc))
            if dry_run:
                return outcome("would import")
            published = Published(found.version, found.source, found.run_id)
            try:
                await Services(session, self.resources).registration.register_version(
                    request, found.source, IMPORTER, None, published
                )
            except AppError as exc:
                await session.rollback()
                return outcome("skipped", exc.detail)
        return outcome("imported")


def _request(
    found: RegisteredVersion, siblings: list[RegisteredVersion], defaults: ImportDefaults
) -> VersionMetadata:
    """The registration upstream's tags describe, or ValueError naming what is missing."""
    tags = found.tags
    metric = tags.get("benchmark_metric")
    metrics: dict[str, Any] | None = json.loads(tags["metrics"]) if "metrics" in tags else None
    if metrics is None and metric and "benchmark_value" in tags:
        metrics = {metric: float(tags["benchmark_value"])}
    if not metrics:
        raise ValueError("no metrics tag and no benchmark_metric/benchmark_value tags")
    if defaults.dataset_hash is None or defaults.num_samples is None:
        raise ValueError("no dataset: pass --dataset-hash and --num-samples")
    fields: dict[str, Any] = {
        "name": found.name,
        "metrics": metrics,
        "dataset": {"hash": defaults.dataset_hash, "num_samples": defaults.num_samples},
        "token_id": tags.get("hokusai_token_id"),
        "tags": {k: v for k, v in tags.items() if k in ("model_id", "hokusai_status")},
    }
    if tags.get("is_baseline", "true" if "baseline_id" not in tags else "false") == "true":
        metric = metric or (next(iter(metrics)) if len(metrics) == 1 else None)
        if metric is None:
            raise ValueError("a baseline without a benchmark_metric tag")
        if defaults.direction is None or defaults.family is None:
            raise ValueError("the benchmark's direction and family: pass --direction and --family")
        benchmark = {"metric": metric, "direction": defaults.direction, "family": defaults.family}
        return VersionMetadata.model_validate(
            {
                **fields,
                "kind": "baseline",
                "model_type": defaults.model_type,
                "benchmark": benchmark,
            }
        )
    parent = next(
        (v.version for v in siblings if v.tags.get("model_id") == tags.get("baseline_id")), None
    )
    if parent is None:
        raise ValueError(f"baseline_id {tags.get('baseline_id')!r} is no version of this model")
    if not tags.get("contributor_address"):
        raise ValueError("an improved version without a contributor_address tag")
    contributors = [{"address": tags["contributor_address"], "weight": 1}]
    return VersionMetadata.model_validate(
        {**fields, "kind": "improved", "parent_version": parent, "contributors": contributors}
    )
