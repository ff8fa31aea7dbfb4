"""Upstream's `hokusai.core.registry.ModelRegistry`, over the service: same import path, same
method names and signatures, same return shapes. Each call warns with the new call to use. What
the service needs and an old call lacks (`dataset`, `benchmark`, an artifact) is a keyword
argument with the service's name; without it the call raises `ConfigurationError` naming it.
Nothing is faked: no placeholder artifact, no mock mode, no local MLflow."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hokusai._compat import client_for, deprecated, missing
from hokusai.errors import ConfigurationError, HokusaiError

# Upstream's exception; every error of the client is one now, so old `except` clauses still catch.
RegistryException = HokusaiError
TOKEN_ID = re.compile(r"^[A-Za-z0-9-]+$")
MODEL_TYPES = frozenset({"classification", "regression", "ranking", "lead_scoring", "custom"})


@dataclass
class ModelRegistryEntry:
    """Upstream's registry entry, filled from a service version."""

    model_id: str
    model_type: str
    version: str
    is_baseline: bool = False
    baseline_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    delta_metrics: dict[str, float] | None = None
    contributor_address: str | None = None
    timestamp: datetime | None = None
    mlflow_version: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class ModelLineage:
    model_id: str
    entries: list[dict[str, Any]]
    total_improvement: float = 0.0


class ModelRegistry:
    """Upstream's registry, over `HokusaiClient` (`client.models`, `client.versions`...)."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        api_key: str | None = None,
        api_endpoint: str | None = None,
        **_: Any,
    ) -> None:
        deprecated("ModelRegistry", "HokusaiClient().models")
        # `tracking_uri` is MLflow's address: the service talks to MLflow, the client never does.
        self.client = client_for(api_key, api_endpoint)

    # Tokenized models (upstream's most used calls)

    def register_tokenized_model(
        self,
        model_uri: str,
        model_name: str,
        token_id: str,
        metric_name: str,
        baseline_value: float,
        additional_tags: dict[str, str] | None = None,
        *,
        dataset: dict[str, Any] | None = None,
        benchmark: dict[str, str] | None = None,
        model_type: str = "custom",
        notify_site: bool = True,
        **_: Any,
    ) -> dict[str, Any]:
        """Register `model_uri` (`runs:/...`, `models:/...`, `mlflow-artifacts:/...`) as a
        baseline of `model_name` whose benchmark is `metric_name` at `baseline_value`. The
        service also needs `dataset={"hash": "sha256:...", "num_samples": n}` and the metric's
        `benchmark={"direction": ..., "family": ...}`."""
        deprecated(
            "register_tokenized_model", "HokusaiClient().models.register(..., kind='baseline')"
        )
        if not all([model_uri, model_name, token_id, metric_name]):
            raise ValueError("All parameters are required")
        if isinstance(baseline_value, bool) or not isinstance(baseline_value, int | float):
            raise ValueError("baseline_value must be numeric")
        token = self.normalize_token_id(token_id)
        if dataset is None or benchmark is None:
            raise missing(dataset=dataset, benchmark=benchmark)
        version = self.client.models.register(
            model_name,
            kind="baseline",
            source_uri=model_uri,
            model_type=model_type,
            token_id=token,
            metrics={metric_name: float(baseline_value)},
            dataset=dataset,
            benchmark={"metric": metric_name, **benchmark},
            tags=additional_tags,
        )
        proposal = next(
            (
                str(v)
                for k, v in (additional_tags or {}).items()
                if k in ("proposal_identifier", "proposal_ticker", "canonical_identifier", "ticker")
                and v
            ),
            token,
        )
        return {
            "model_name": model_name,
            "version": str(version.version),
            "token_id": token,
            "token_identifier": token,
            "proposal_identifier": proposal,
            "metric_name": metric_name,
            "baseline_value": baseline_value,
            "mlflow_run_id": version.artifact.mlflow_run_id,
            "status": "registered",
            "tags": version.tags,
            # The service does not notify the Hokusai site: say so, never pretend it did.
            "event_emitted": False,
            "site_status_update": "skipped" if not notify_site else "not_supported",
        }

    def get_tokenized_model(self, model_name: str, version: str) -> dict[str, Any]:
        deprecated("get_tokenized_model", "HokusaiClient().versions.get(name, version)")
        found = self.client.versions.get(model_name, int(version))
        if found.token_id is None:
            raise ConfigurationError(f"{model_name} has no token id")
        metric = found.benchmark.metric
        return {
            "model_name": model_name,
            "version": str(found.version),
            "token_id": found.token_id,
            "metric_name": metric,
            "baseline_value": found.metrics.get(metric),
            "tags": found.tags,
        }

    def list_models_by_token(self, token_id: str) -> list[dict[str, Any]]:
        deprecated("list_models_by_token", "HokusaiClient().models.list(token_id=...)")
        token = self.normalize_token_id(token_id)
        return [
            self.get_tokenized_model(model.name, str(version.version))
            for model in self.client.models.list(token_id=token)
            for version in self.client.versions.list(model.name)
        ]

    def update_model_tags(self, model_name: str, version: str, tags: dict[str, str]) -> None:
        """Add or change tags of a version (the others are kept, as upstream did)."""
        deprecated("update_model_tags", "HokusaiClient().versions.update(name, version, tags=...)")
        current = self.client.versions.get(model_name, int(version)).tags
        merged = {**current, **{key: str(value) for key, value in tags.items()}}
        self.client.versions.update(model_name, int(version), tags=merged)

    def validate_token_id(self, token_id: str) -> None:
        if not token_id:
            raise ValueError("Invalid token ID: cannot be empty")
        if len(token_id) > 64:
            raise ValueError("Invalid token ID: too long (max 64 chars)")
        if not TOKEN_ID.match(token_id):
            raise ValueError("Invalid token ID: must contain only letters, numbers, and hyphens")
        if token_id.startswith("-") or token_id.endswith("-"):
            raise ValueError("Invalid token ID: cannot start or end with hyphen")

    def normalize_token_id(self, token_id: str) -> str:
        self.validate_token_id(token_id)
        return token_id.upper()

    # Baselines, improvements, lineage, rollback

    def register_baseline(
        self,
        model: Any = None,
        model_type: str | None = None,
        model_name: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        artifact: str | os.PathLike[str] | None = None,
        source_uri: str | None = None,
        metrics: dict[str, float] | None = None,
        dataset: dict[str, Any] | None = None,
        benchmark: dict[str, str] | None = None,
        **_: Any,
    ) -> ModelRegistryEntry:
        """Register a baseline, as upstream's `register_baseline(model, model_type)`: `model` is
        what is uploaded (an MLflow model directory, a .tar.gz/.zip, or a scikit-learn object),
        unless `artifact=` or `source_uri=` says otherwise; the model is named `model_name`, else
        `model_type` (upstream's registry was keyed by type), and recorded with `model_type` when
        it is one of the service's types (`lead_scoring`...), else `custom`. The service also
        needs its `metrics` (or `model.get_metrics()`), the `dataset` and the `benchmark`."""
        deprecated("register_baseline", "HokusaiClient().models.register(..., kind='baseline')")
        name = model_name or model_type
        metrics = metrics if metrics is not None else _model_metrics(model)
        if name is None or metrics is None or dataset is None or benchmark is None:
            raise missing(model_name=name, metrics=metrics, dataset=dataset, benchmark=benchmark)
        if artifact is None and source_uri is None:
            if model is None:
                raise missing(artifact=None)
            artifact = model
        version = self.client.models.register(
            name,
            kind="baseline",
            artifact=artifact,
            source_uri=source_uri,
            metrics=metrics,
            dataset=dataset,
            benchmark=benchmark,
            model_type=model_type if model_type in MODEL_TYPES else "custom",
            description=(metadata or {}).get("description"),
        )
        return _entry(version)

    def register_improved_model(
        self,
        model: Any,
        baseline_id: str,
        delta_metrics: dict[str, float],
        contributor: str,
        *,
        model_name: str | None = None,
        artifact: str | os.PathLike[str] | None = None,
        source_uri: str | None = None,
        metrics: dict[str, float] | None = None,
        dataset: dict[str, Any] | None = None,
        **_: Any,
    ) -> ModelRegistryEntry:
        """Register an improved version of `model_name` whose parent is version `baseline_id`.
        The service measures the delta itself (`delta_metrics` is not trusted); it needs the
        candidate's `metrics`, the `dataset` and the model (`artifact=` or `source_uri=`)."""
        deprecated(
            "register_improved_model", "HokusaiClient().models.register(..., kind='improved')"
        )
        metrics = metrics if metrics is not None else _model_metrics(model)
        if model_name is None or metrics is None or dataset is None:
            raise missing(model_name=model_name, metrics=metrics, dataset=dataset)
        if artifact is None and source_uri is None:
            raise missing(artifact=None)
        version = self.client.models.register(
            model_name,
            kind="improved",
            artifact=artifact,
            source_uri=source_uri,
            metrics=metrics,
            dataset=dataset,
            parent_version=int(baseline_id),
            contributors=[{"address": contributor, "weight": 1}],
        )
        return _entry(version)

    def get_model_lineage(self, model_id: str) -> ModelLineage:
        """The lineage of a model, by name or by an entry's `model_id` (`name:version`: the
        versions that version descends from and leads to). `total_improvement` is the gain, in
        percentage points, of the lineage's head over its baseline: the `production` version
        when it is in the lineage, else the newest version DeltaOne accepted (0.0 when none)."""
        deprecated("get_model_lineage", "HokusaiClient().lineage.get(name)")
        name, _, version = model_id.partition(":")
        graph = self.client.lineage.get(
            name, version=int(version) if version else None, direction="both"
        )
        numbers = {node.version for node in graph.nodes}
        production = self.client.aliases.list(name).get("production")
        accepted = [node.version for node in graph.nodes if node.deltaone_accepted]
        head = production if production in numbers else max(accepted, default=None)
        total = self.client.lineage.get(name, version=head).cumulative_gain_pp if head else None
        entries = [
            {
                "model_id": f"{name}:{node.version}",
                "version": str(node.version),
                "metrics": {"primary": node.primary_metric_value},
                "deltaone_accepted": node.deltaone_accepted,
            }
            for node in sorted(graph.nodes, key=lambda n: n.version)
        ]
        return ModelLineage(model_id, entries, float(total or 0.0))

    def list_models_by_type(self, model_type: str) -> list[ModelRegistryEntry]:
        """Every version of the model `model_type` (upstream's model type is our model name)."""
        deprecated("list_models_by_type", "HokusaiClient().versions.list(name)")
        return sorted((_entry(v) for v in self.client.versions.list(model_type)), key=_number)

    def get_latest_model(self, model_type: str) -> ModelRegistryEntry | None:
        """The version behind `production`, else the newest."""
        deprecated("get_latest_model", "HokusaiClient().models.get(name)")
        model = self.client.models.get(model_type)
        number = model.aliases.get("production", model.latest_version)
        return _entry(self.client.versions.get(model_type, number)) if number else None

    def rollback_model(self, model_type: str, target_model_id: str) -> bool:
        """Point `production` of `model_type` at version `target_model_id` (upstream's
        meaning; the service records the move in the alias history)."""
        deprecated("rollback_model", "HokusaiClient().aliases.set(name, 'production', version)")
        version = int(target_model_id.rpartition(":")[2])
        self.client.aliases.set(model_type, "production", version, reason="rollback_model")
        return True


def _number(entry: ModelRegistryEntry) -> int:
    return int(entry.version)


def _model_metrics(model: Any) -> dict[str, float] | None:
    getter = getattr(model, "get_metrics", None)
    return dict(getter()) if callable(getter) else None


def _entry(version: Any) -> ModelRegistryEntry:
    return ModelRegistryEntry(
        model_id=f"{version.model}:{version.version}",
        model_type=version.model,
        version=str(version.version),
        is_baseline=version.kind == "baseline",
        baseline_id=str(version.parent_version) if version.parent_version else None,
        metrics=dict(version.metrics),
        delta_metrics={m: d.absolute for m, d in (version.delta or {}).items()} or None,
        contributor_address=version.contributors[0].address if version.contributors else None,
        timestamp=version.created_at,
        mlflow_version=str(version.version),
        tags=dict(version.tags),
    )
