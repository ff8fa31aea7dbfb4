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
    """An artifact in MLflow, as upstream scripts had one (`runs:/...` or `mlflow-artifacts:/...`)."""
    model_dir = save_sklearn(tmp_path_factory.mktemp("upstream"))[0]
    version = HokusaiClient(live.url, live.admin_key).models.register(
        unique("upstream-src"), kind="baseline", artifact=model_dir, model_type="custom",
        metrics={"accuracy": 0.8}, dataset=DATASET, benchmark=BENCHMARK,
    )  # fmt: skip
    return f"runs:/{version.artifact.mlflow_run_id}/model"


@pytest.mark.usefixtures("configured")
def test_an_upstream_tokenized_model_script_runs_unchanged(model_uri: str) -> None:
    from hokusai.core.registry import ModelRegistry, RegistryException

    name, token = unique("lead-scorer"), unique("lead").upper()
    registry = ModelRegistry()
    result = registry.register_tokenized_model(
        model_uri, name, token.lower(), "accuracy", 0.81, {"team": "gtm"},
        dataset=DATASET, benchmark={"direction": "higher_is_better", "family": "proportion"},
    )  # fmt: skip
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
    baseline = registry.register_baseline(
        model_name=name, artifact=model_dir, metrics={"accuracy": 0.8}, dataset=DATASET, benchmark=BENCHMARK
    )  # fmt: skip
    improved = registry.register_improved_model(
        None, baseline.version, {"accuracy": 0.05}, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        model_name=name, artifact=model_dir, metrics={"accuracy": 0.85}, dataset=DATASET,
    )  # fmt: skip
    lineage = registry.get_model_lineage(name)
    rolled = registry.rollback_model(name, baseline.model_id)
    assert baseline.is_baseline
    assert improved.baseline_id == "1"
    assert improved.delta_metrics == {"accuracy": pytest.approx(0.05)}
    assert [entry["version"] for entry in lineage.entries] == ["1", "2"]
    gain = registry.client.lineage.get(name).cumulative_gain_pp or 0.0
    assert lineage.total_improvement == pytest.approx(gain), "the service's measured gain"
    assert rolled is True
    assert registry.client.aliases.list(name) == {"production": 1}
