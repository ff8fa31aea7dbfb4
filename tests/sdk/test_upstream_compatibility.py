"""Code written against the upstream `hokusai` package keeps working over the service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hokusai
import pytest
from hokusai import ConfigurationError, HokusaiClient
from hokusai._compat import _setup

from tests.conftest import LiveService
from tests.factories import DATASET, save_sklearn, unique

BENCHMARK = {"metric": "accuracy", "direction": "higher_is_better", "family": "proportion"}


@pytest.fixture
def configured(live: LiveService) -> Iterator[None]:
    with pytest.warns(DeprecationWarning, match="HokusaiClient"):
        hokusai.setup(api_key=live.admin_key, api_endpoint=live.url + "/api")
    yield
    _setup.clear()


@pytest.fixture(scope="module")
def model_uri(live: LiveService, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An artifact in MLflow, as upstream scripts had one (`runs:/...` or
    `mlflow-artifacts:/...`)."""
    model_dir = save_sklearn(tmp_path_factory.mktemp("upstream"))[0]
    version = HokusaiClient(live.url, live.admin_key).models.register(
        unique("upstream-src"),
        kind="baseline",
        artifact=model_dir,
        model_type="custom",
        metrics={"accuracy": 0.8},
        dataset=DATASET,
        benchmark=BENCHMARK,
    )
    return f"runs:/{version.artifact.mlflow_run_id}/model"


def two_baselines(client: HokusaiClient, name: str, tmp_path: Path) -> str:
    """Versions 1 and 2 of `name`, both baselines (accuracy 0.80, then 0.85)."""
    model_dir = save_sklearn(tmp_path)[0]
    for accuracy in (0.80, 0.85):
        client.models.register(
            name,
            kind="baseline",
            artifact=model_dir,
            model_type="custom",
            metrics={"accuracy": accuracy},
            dataset=DATASET,
            benchmark=BENCHMARK,
        )
    return name


@pytest.mark.usefixtures("configured")
def test_an_upstream_tokenized_model_script_runs_unchanged(model_uri: str) -> None:
    from hokusai.core.registry import ModelRegistry, RegistryException

    name, token = unique("lead-scorer"), unique("lead").upper()
    registry = ModelRegistry()
    result = registry.register_tokenized_model(
        model_uri,
        name,
        token.lower(),
        "accuracy",
        0.81,
        {"team": "gtm"},
        dataset=DATASET,
        benchmark={"direction": "higher_is_better", "family": "proportion"},
    )
    assert result["model_name"] == name
    assert result["version"] == "1"
    assert result["token_id"] == token
    assert result["baseline_value"] == 0.81
    assert result["event_emitted"] is False
    fetched = registry.get_tokenized_model(name, "1")
    by_token = registry.list_models_by_token(token.lower())
    registry.update_model_tags(name, "1", {"stage": "production"})
    tags = registry.get_tokenized_model(name, "1")["tags"]
    assert fetched["baseline_value"] == pytest.approx(0.81)
    assert fetched["metric_name"] == "accuracy"
    assert [m["model_name"] for m in by_token] == [name]
    assert tags == {"team": "gtm", "stage": "production"}
    with pytest.raises(ValueError, match="hyphen"):
        registry.register_tokenized_model(model_uri, name, "-bad-", "accuracy", 0.8)
    with pytest.raises(RegistryException, match="dataset"):
        registry.register_tokenized_model(model_uri, unique(), "OK", "accuracy", 0.8)
    with pytest.warns(DeprecationWarning, match=r"versions\.get"):
        registry.get_tokenized_model(name, "1")


@pytest.mark.usefixtures("configured")
def test_upstream_baseline_improvement_lineage_and_rollback(tmp_path: Path) -> None:
    from hokusai.core.registry import ModelRegistry

    model_dir = save_sklearn(tmp_path)[0]
    name = unique("upstream")
    registry = ModelRegistry()
    with pytest.raises(ConfigurationError, match="artifact"):
        registry.register_baseline(
            model_name=name, metrics={"accuracy": 0.8}, dataset=DATASET, benchmark=BENCHMARK
        )
    # Upstream's positional form: the model first (here a folder), then the model type.
    baseline = registry.register_baseline(
        model_dir,
        "lead_scoring",
        model_name=name,
        metrics={"accuracy": 0.8},
        dataset=DATASET,
        benchmark=BENCHMARK,
    )
    improved = registry.register_improved_model(
        None,
        baseline.version,
        {"accuracy": 0.05},
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        model_name=name,
        artifact=save_sklearn(tmp_path / "v2")[0],  # another save: other files
        metrics={"accuracy": 0.85},
        dataset=DATASET,
    )
    lineage = registry.get_model_lineage(name)
    by_entry = registry.get_model_lineage(baseline.model_id)  # `name:1`, as upstream returned it
    rolled = registry.rollback_model(name, baseline.model_id)
    assert baseline.is_baseline
    assert registry.client.models.get(name).model_type == "lead_scoring"
    assert improved.baseline_id == "1"
    assert improved.delta_metrics == {"accuracy": pytest.approx(0.05)}
    assert [entry["version"] for entry in lineage.entries] == ["1", "2"]
    assert [entry["version"] for entry in by_entry.entries] == ["1", "2"]
    assert registry.client.versions.get(name, 2).deltaone.accepted  # type: ignore[union-attr]
    assert lineage.total_improvement == pytest.approx(5.0), "v2's accepted +5 pp over v1"
    assert by_entry.total_improvement == pytest.approx(5.0)
    assert rolled is True
    assert registry.client.aliases.list(name) == {"production": 1}


@pytest.mark.usefixtures("configured")
async def test_upstream_version_manager_and_inference_pipeline(tmp_path: Path) -> None:
    from hokusai.core.inference import HokusaiInferencePipeline, InferenceRequest
    from hokusai.core.registry import ModelRegistry
    from hokusai.core.versioning import ModelVersionManager, VersioningException

    registry = ModelRegistry()
    name = two_baselines(registry.client, unique("upstream-inf"), tmp_path)
    versions = ModelVersionManager(registry)
    assert [e.version for e in versions.get_version_history(name)] == ["1", "2"]
    assert versions.get_previous_version(name, "2").version == "1"  # type: ignore[union-attr]
    comparison = versions.compare_versions(name, "1", "2")
    assert comparison.is_improvement
    assert comparison.metrics_delta["accuracy"] == pytest.approx(0.05)
    with pytest.raises(VersioningException, match="1, 2, 3"):
        versions.rollback_to_version(name, "1.0.0")
    assert versions.rollback_to_version(name, "1")
    assert versions.deprecate_version(name, "2")
    assert registry.client.versions.get(name, 2).tags["deprecated"] == "true"

    pipeline = HokusaiInferencePipeline(registry, versions, None)
    row = {"f0": 0.2, "f1": 0.9, "f2": 0.1}
    single = await pipeline.predict(InferenceRequest("r1", name, row))
    batch = await pipeline.batch_predict(
        [
            InferenceRequest("a", name, row, model_version="2"),
            InferenceRequest("b", name, [row, row]),
            InferenceRequest("c", name, row),
        ]
    )
    await pipeline.close()
    assert single.model_version == "1", "production, after the rollback"
    assert [r.request_id for r in batch] == ["a", "b", "c"]
    assert batch[0].model_version == "2"
    assert len(batch[1].prediction) == 2
    assert batch[2].prediction == single.prediction
    assert batch[2].cache_hit


@pytest.mark.usefixtures("configured")
def test_upstream_traffic_router_runs_on_the_services_ab_tests(tmp_path: Path) -> None:
    from hokusai.core.ab_testing import ABTestConfig, ModelTrafficRouter
    from hokusai.core.registry import ModelRegistry

    registry = ModelRegistry()
    name = two_baselines(registry.client, unique("upstream-ab"), tmp_path)
    router = ModelTrafficRouter()
    config = ABTestConfig(
        "checkout", {"model_a": 0.5, "model_b": 0.5}, model_a=f"{name}:1", model_b=f"{name}:2"
    )
    with pytest.raises(ConfigurationError, match="metric"):
        router.create_ab_test(config)
    assert (
        router.create_ab_test(config, metric={"name": "converted", "kind": "binary"}) == "checkout"
    )
    routed = {user: router.route_request("checkout", user) for user in (f"u{i}" for i in range(40))}
    assert set(routed.values()) == {f"{name}:1", f"{name}:2"}
    assert routed == {user: router.route_request("checkout", user) for user in routed}, "sticky"
    counted = sum(router.record_outcome("checkout", user, 1.0) for user in routed)
    assert router.record_outcome("checkout", "never-routed", 1.0) == 0
    with pytest.raises(ConfigurationError, match="record_outcome"):
        router.record_metric("checkout", f"{name}:1", "latency", 12.0)
    results = router.get_ab_test_results("checkout")
    assert counted == 40
    assert sum(results.total_requests.values()) == 40
    assert (
        results.metrics_comparison["converted"]["samples_a"]
        + results.metrics_comparison["converted"]["samples_b"]
        == 40
    )
    assert router.list_active_tests() == ["checkout"]
    router.stop_ab_test("checkout")
    assert router.list_active_tests() == []


@pytest.mark.usefixtures("configured")
def test_upstream_trackers_use_the_services_measurements(tmp_path: Path) -> None:
    from hokusai.core.registry import ModelRegistry
    from hokusai.tracking.experiments import ExperimentManager
    from hokusai.tracking.performance import PerformanceTracker

    model_dir = save_sklearn(tmp_path)[0]
    name, address = unique("upstream-track"), "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
    registry = ModelRegistry()
    registry.client.models.register(
        name,
        kind="baseline",
        artifact=model_dir,
        model_type="custom",
        metrics={"accuracy": 0.80},
        dataset=DATASET,
        benchmark=BENCHMARK,
    )
    tracker = PerformanceTracker()
    with pytest.raises(ConfigurationError, match="dataset"):
        tracker.track_improvement(
            {"accuracy": 0.8}, {"accuracy": 0.9}, {"contributor_address": address}
        )
    delta, _ = tracker.track_improvement(
        {"accuracy": 0.8},
        {"accuracy": 0.9},
        {"contributor_address": address},
        model_name=name,
        artifact=model_dir,
        dataset=DATASET,
    )
    assert delta == {"accuracy": pytest.approx(0.1)}
    impact = tracker.get_contributor_impact(address)
    assert impact["total_models_improved"] >= 1, "upstream always answered zeros"
    assert any(c["model"] == name for c in impact["contributions"])

    compared = ExperimentManager(registry).compare_models(f"{name}:1", f"models:/{name}/2")
    assert compared["improvements"] == {"accuracy": pytest.approx(0.1)}
    assert compared["recommendation"] == "ACCEPT"
    with pytest.raises(ConfigurationError, match="register"):
        ExperimentManager(registry).create_improvement_experiment(f"{name}:1", {})
