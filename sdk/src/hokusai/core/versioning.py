"""Upstream's `hokusai.core.versioning.ModelVersionManager`, over the service. The service
numbers versions 1, 2, 3 (MLflow's numbers), so version strings here are those numbers; an
upstream semantic version ("1.2.0") is refused with that explanation, never guessed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from hokusai._compat import deprecated
from hokusai.core.registry import ModelRegistry, ModelRegistryEntry
from hokusai.errors import HokusaiError


class VersioningException(HokusaiError):
    """Upstream's versioning error."""


@dataclass
class VersionComparisonResult:
    version1: str
    version2: str
    metrics_delta: dict[str, float]
    is_improvement: bool
    comparison_timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))


def _number(version: str) -> int:
    if not version.isdigit():
        raise VersioningException(
            f"Version {version!r}: the service numbers versions 1, 2, 3 (MLflow's version numbers)"
        )
    return int(version)


class ModelVersionManager:
    def __init__(self, registry: ModelRegistry) -> None:
        deprecated("ModelVersionManager", "HokusaiClient().versions and .aliases")
        self.registry = registry
        self.client = registry.client

    def get_version_history(self, model_type: str) -> list[ModelRegistryEntry]:
        """Every version, oldest first."""
        return self.registry.list_models_by_type(model_type)

    def rollback_to_version(self, model_type: str, target_version: str) -> bool:
        return self.registry.rollback_model(model_type, str(_number(target_version)))

    def compare_versions(
        self, model_type: str, version1: str, version2: str
    ) -> VersionComparisonResult:
        """The service's direction-aware comparison (upstream guessed from metric names)."""
        deprecated("compare_versions", "HokusaiClient().models.compare(name, base, candidate)")
        comparison = self.client.models.compare(model_type, _number(version1), _number(version2))
        metrics = comparison.metrics
        return VersionComparisonResult(
            version1=version1,
            version2=version2,
            metrics_delta={name: m.absolute for name, m in metrics.items()},
            is_improvement=any(m.better for m in metrics.values()),
        )

    def get_previous_version(
        self, model_type: str, current_version: str
    ) -> ModelRegistryEntry | None:
        current = _number(current_version)
        earlier = [e for e in self.get_version_history(model_type) if int(e.version) < current]
        return earlier[-1] if earlier else None

    def get_latest_stable_version(self, model_type: str) -> ModelRegistryEntry | None:
        """The newest version tagged `stable=true`."""
        stable = [e for e in self.get_version_history(model_type) if e.tags.get("stable") == "true"]
        return stable[-1] if stable else None

    def deprecate_version(self, model_type: str, version: str) -> bool:
        """Tag the version `deprecated=true` (and when)."""
        number = _number(version)
        tags = self.client.versions.get(model_type, number).tags
        stamp = datetime.now(UTC).isoformat()
        self.client.versions.update(
            model_type, number, tags={**tags, "deprecated": "true", "deprecated_at": stamp}
        )
        return True
