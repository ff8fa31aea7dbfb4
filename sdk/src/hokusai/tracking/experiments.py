"""Upstream's `hokusai.tracking.experiments.ExperimentManager`, over the service. Comparisons
use the service's direction-aware rules on the metrics registered with each version (the
service does not evaluate test data; evaluate before registering). No mock mode."""

from __future__ import annotations

from typing import Any

from hokusai._compat import client_for, deprecated
from hokusai.errors import ConfigurationError


def _version(model_id: str) -> tuple[str, int]:
    text = model_id.removeprefix("models:/").replace("/", ":")
    name, _, number = text.rpartition(":")
    if not name or not number.isdigit():
        raise ConfigurationError(
            f"Models are named 'name:version' (or models:/name/version), not {model_id!r}"
        )
    return name, int(number)


class ExperimentManager:
    def __init__(
        self,
        experiment_name: Any = "hokusai_model_improvements",
        mlflow_tracking_uri: str | None = None,
        registry: Any = None,
    ) -> None:
        deprecated("ExperimentManager", "HokusaiClient().experiments / .models.compare")
        registry = experiment_name if not isinstance(experiment_name, str) else registry
        self.experiment_name = (
            experiment_name if isinstance(experiment_name, str) else "hokusai_model_improvements"
        )
        self.client = registry.client if registry is not None else client_for(None, None)

    def compare_models(
        self, baseline_id: str, candidate_id: str, test_data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Both versions' registered metrics, the direction-aware improvement, and ACCEPT when
        the candidate is better on every shared metric, REJECT when it is worse on any, else
        REVIEW."""
        name, base = _version(baseline_id)
        other, candidate = _version(candidate_id)
        if other != name:
            raise ConfigurationError("compare_models compares two versions of one model")
        comparison = self.client.models.compare(name, base, candidate)
        metrics = comparison.metrics
        worse = any(m.gain < 0 for m in metrics.values())
        better = all(m.better for m in metrics.values())
        return {
            "baseline_metrics": {k: m.base for k, m in metrics.items()},
            "candidate_metrics": {k: m.candidate for k, m in metrics.items()},
            "improvements": {k: m.gain for k, m in metrics.items()},
            "recommendation": "REJECT" if worse else "ACCEPT" if better else "REVIEW",
            "test_dataset": (test_data or {}).get("dataset_name", "registered metrics"),
        }

    def get_experiment_history(self, baseline_model_id: str | None = None) -> list[dict[str, Any]]:
        """The runs of this manager's experiment, newest first, optionally of one baseline."""
        experiment = next(
            (e for e in self.client.experiments.list() if e.name == self.experiment_name), None
        )
        if experiment is None:
            return []
        history = []
        for run in self.client.experiments.runs(experiment.experiment_id):
            baseline = run.params.get("baseline_model_id")
            if baseline_model_id is None or baseline == baseline_model_id:
                history.append(
                    {
                        "run_id": run.run_id,
                        "baseline_model": baseline,
                        "improvement": run.metrics.get("accuracy_improvement", 0.0),
                        "recommendation": run.tags.get("recommendation", "unknown"),
                        "timestamp": run.start_time,
                    }
                )
        return history

    def create_improvement_experiment(self, baseline_model_id: str, contributed_data: Any) -> str:
        raise ConfigurationError(
            "Runs are created by registering: "
            "models.register(..., kind='improved', parent_version=...)"
        )
