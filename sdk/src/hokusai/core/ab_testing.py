"""Upstream's `hokusai.core.ab_testing` (`ModelTrafficRouter`, `ABTestConfig`), over the
service's A/B tests: assignment, statistics and the verdict are the service's (upstream hashed
with MD5 in one process and guessed winners from means). Models are named `name:version`, as
`ModelRegistryEntry.model_id` names them. Per-model metrics have no meaning there: outcomes are
recorded per unit (`record_outcome`), and `record_metric` says so instead of dropping them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hokusai._client import HokusaiClient
from hokusai._compat import client_for, deprecated
from hokusai.errors import ConfigurationError, HokusaiError

ABTestException = HokusaiError


def _model(model_id: str) -> tuple[str, int]:
    name, _, version = model_id.rpartition(":")
    if not name or not version.isdigit():
        raise ABTestException(f"Models are named 'name:version' here, not {model_id!r}")
    return name, int(version)


@dataclass
class ABTestConfig:
    test_id: str
    traffic_split: dict[str, float]
    duration_hours: int = 24
    model_a: str | None = None
    model_b: str | None = None
    models: list[str] | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.model_a and self.model_b:
            if self.models:
                raise ABTestException("Cannot specify both binary and multi-variant models")
            if set(self.traffic_split) != {"model_a", "model_b"}:
                raise ABTestException(
                    "Traffic split keys must be 'model_a' and 'model_b' for binary test"
                )
            self.models = [self.model_a, self.model_b]
            self.traffic_split = {
                self.model_a: self.traffic_split["model_a"],
                self.model_b: self.traffic_split["model_b"],
            }
        elif self.models:
            if set(self.traffic_split) != set(self.models):
                raise ABTestException(f"Traffic split keys must match models: {set(self.models)}")
        else:
            raise ABTestException(
                "Must specify either binary (model_a, model_b) or multi-variant (models)"
            )
        if abs(sum(self.traffic_split.values()) - 1.0) > 0.001:
            raise ABTestException(
                f"Traffic split must sum to 1.0, got {sum(self.traffic_split.values())}"
            )


@dataclass
class ABTestResult:
    test_id: str
    model_a: str
    model_b: str
    metrics_comparison: dict[str, dict[str, float]]
    winner: str | None = None
    confidence_level: float = 0.0
    total_requests: dict[str, int] = field(default_factory=dict)


class ModelTrafficRouter:
    def __init__(
        self,
        client: HokusaiClient | None = None,
        *,
        api_key: str | None = None,
        api_endpoint: str | None = None,
    ) -> None:
        deprecated("ModelTrafficRouter", "HokusaiClient().ab_tests")
        self.client = client or client_for(api_key, api_endpoint)
        self._tests: dict[str, str] = {}  # upstream test id -> the service's test id
        self._models: dict[str, list[str]] = {}

    def create_ab_test(self, config: ABTestConfig, *, metric: dict[str, Any] | None = None) -> str:
        """Create and start the test. The service analyses one outcome metric per test:
        `metric={"name": ..., "kind": "binary" | "continuous"}` (upstream had none)."""
        if metric is None:
            raise ConfigurationError(
                "The service needs metric for this call: pass metric={'name': ..., 'kind': ...}"
            )
        if config.test_id in self._tests:
            raise ABTestException(f"Test {config.test_id} already exists")
        models = config.models or []
        names = {_model(m)[0] for m in models}
        if len(names) != 1:
            raise ABTestException("A test compares versions of one model")
        variants = [
            {"name": f"v{_model(m)[1]}", "version": _model(m)[1], "weight": config.traffic_split[m]}
            for m in models
        ]
        test = self.client.ab_tests.create(
            config.test_id,
            names.pop(),
            variants,
            metric,
            ends_at=config.created_at + timedelta(hours=config.duration_hours),
        )
        self.client.ab_tests.start(test.id)
        self._tests[config.test_id], self._models[config.test_id] = test.id, models
        return config.test_id

    def route_request(self, test_id: str, user_id: str) -> str:
        """The model (`name:version`) the unit sees: deterministic, sticky, counted as exposed."""
        assignment = self.client.ab_tests.assign(self._id(test_id), user_id)
        model = _model(self._models[test_id][0])[0]
        return f"{model}:{assignment.version}"

    def record_outcome(self, test_id: str, user_id: str, value: float) -> int:
        """Record a unit's outcome (only exposed units count); how many counted."""
        return self.client.ab_tests.record_outcomes(
            self._id(test_id), [{"unit_id": user_id, "value": value}]
        ).accepted

    def record_metric(self, test_id: str, model_id: str, metric_name: str, value: float) -> None:
        raise ConfigurationError(
            "The service analyses outcomes per unit, not metrics per model: "
            "use record_outcome(test_id, user_id, value)"
        )

    def get_active_test(self, test_id: str) -> dict[str, Any] | None:
        if test_id not in self._tests:
            return None
        test = self.client.ab_tests.get(self._tests[test_id])
        return test.model_dump() if test.status == "running" else None

    def list_active_tests(self) -> list[str]:
        return [test_id for test_id in self._tests if self.get_active_test(test_id) is not None]

    def stop_ab_test(self, test_id: str) -> None:
        self.client.ab_tests.stop(self._id(test_id))

    def update_traffic_split(self, test_id: str, new_split: dict[str, float]) -> None:
        """New weights: the test is paused, changed and resumed (weights do not move while it
        runs)."""
        service_id = self._id(test_id)
        weights = {f"v{_model(m)[1]}": w for m, w in new_split.items()}
        self.client.ab_tests.pause(service_id)
        self.client.ab_tests.update(service_id, weights=weights)
        self.client.ab_tests.resume(service_id)

    def get_ab_test_results(self, test_id: str) -> ABTestResult:
        """The service's statistics: means, lift, and its verdict's winner."""
        results = self.client.ab_tests.results(self._id(test_id))
        models = self._models[test_id]
        if len(models) != 2:
            raise ABTestException("Results only available for binary tests currently")
        by_name = {f"v{_model(m)[1]}": m for m in models}
        control, treatment = results.variants[0], results.variants[1]
        comparison = results.comparisons[0] if results.comparisons else None
        winner = None
        if results.verdict == "treatment_better":
            winner = models[1]
        elif results.verdict == "control_better":
            winner = models[0]
        return ABTestResult(
            test_id=test_id,
            model_a=models[0],
            model_b=models[1],
            metrics_comparison={
                results.metric.name: {
                    "mean_a": control.mean or 0.0,
                    "mean_b": treatment.mean or 0.0,
                    "improvement": (comparison.relative_lift or 0.0) if comparison else 0.0,
                    "samples_a": control.n,
                    "samples_b": treatment.n,
                }
            },
            winner=winner,
            confidence_level=(comparison.chance_to_beat_control or 0.0) if comparison else 0.0,
            total_requests={by_name[v.name]: v.exposures for v in results.variants},
        )

    def _id(self, test_id: str) -> str:
        if test_id not in self._tests:
            raise ABTestException(f"No active test found: {test_id}")
        return self._tests[test_id]
