"""The SDK against the live service (real Postgres, Redis, MLflow; `hokusai-api serve` on a
port): a data scientist's whole journey with the sync client, the async client under
`asyncio.gather`, and pagination past one page."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hokusai import AsyncHokusaiClient, ConfigurationError, ConflictError, HokusaiClient
from hokusai.types import Model

from tests.conftest import LiveService
from tests.factories import CONTRIBUTOR, DATASET, FEATURES, save_sklearn, training_data, unique

BENCHMARK = {"metric": "accuracy", "direction": "higher_is_better", "family": "proportion"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_sklearn(tmp_path_factory.mktemp("sdk-models"))[0]


@pytest.fixture
def client(live: LiveService) -> HokusaiClient:
    return HokusaiClient(live.url, live.admin_key)


def rows(count: int) -> list[dict[str, float]]:
    frame = training_data(max(count, 1))[0]
    return [dict(zip(FEATURES, values, strict=True)) for values in frame.values.tolist()[:count]]


def test_the_whole_journey_with_the_sync_client(
    client: HokusaiClient, model_dir: Path, tmp_path: Path
) -> None:
    name = unique("sdk")
    with client:
        base = client.models.register(
            name,
            kind="baseline",
            model_type="classification",
            artifact=model_dir,
            metrics={"accuracy": 0.80},
            benchmark=BENCHMARK,
            dataset=DATASET,
            tags={"team": "gtm"},
        )
        better = client.models.register(
            name,
            kind="improved",
            artifact=model_dir,
            metrics={"accuracy": 0.84},
            dataset=DATASET,
            contributors=[{"address": CONTRIBUTOR, "weight": 1}],
        )
        assert (base.version, better.version, better.parent_version) == (1, 2, 1)
        assert better.delta is not None
        assert better.delta["accuracy"].gain_pp == pytest.approx(4.0)
        assert better.contributors[0].weight_bps == 10_000
        assert name in {m.name for m in client.models.list()}
        assert client.models.get(name).latest_version == 2
        assert [v.version for v in client.versions.list(name)] == [2, 1]
        assert client.versions.get(name, 1).tags == {"team": "gtm"}

        moved = client.aliases.set(name, "production", 1, reason="baseline first")
        client.aliases.set(name, "production", 2, reason="beats v1")
        assert moved.version == 1
        assert client.aliases.list(name) == {"production": 2}
        assert [e.to_version for e in client.aliases.history(name, "production")] == [1, 2]
        assert client.aliases.at(name, "production", datetime.now(UTC) - timedelta(days=1)) is None

        one = client.predict(name, rows(1)[0])
        again = client.predict(name, rows(1)[0])
        assert (one.version, one.cache_status, again.cache_status) == (2, "MISS", "HIT")
        assert one.request_id

        batch = HokusaiClient(client.base_url, client._api_key, max_batch_size=4).predict(
            name, rows(10), version=1
        )
        direct = client.predict(name, rows(10), version=1)
        assert batch.predictions == direct.predictions, "split in three calls, joined in order"
        frame = training_data(10)[0]  # a pandas DataFrame, as MLflow's pyfunc takes it
        assert client.predict(name, frame, version=1).predictions == direct.predictions
        array = frame.to_numpy()  # columns in the signature's order, as pyfunc takes it too
        assert client.predict(name, array, version=1).predictions == direct.predictions
        assert client.predict(name, array[0]).predictions == [one.predictions[0]]
        with pytest.raises(ConfigurationError, match="3 values"):
            client.predict(name, array[:, :2], version=1)
        assert batch.cache.hits + batch.cache.misses == 10

        comparison = client.models.compare(name, 1, 2)
        assert comparison.metrics["accuracy"].better
        graph = client.lineage.get(name, version=2)
        assert [(e.parent, e.child) for e in graph.edges] == [(1, 2)]
        assert "flowchart" in client.lineage.mermaid(name) or "graph" in client.lineage.mermaid(
            name
        )
        assert client.lineage.dot(name).startswith("digraph")

        impact = client.contributors.impact(CONTRIBUTOR)
        assert impact.contributions >= 1
        assert any(c.model == name for c in client.contributors.contributions(CONTRIBUTOR))

        rolled = client.models.rollback(name, reason="sdk test")
        assert rolled.version == 1
        updated = client.models.update(name, description="lead scoring")
        assert updated.description == "lead scoring"
        archive = client.versions.download(name, 2, tmp_path)
        assert archive.name == f"{name}-2.tar.gz"
        assert archive.stat().st_size > 0

        assert client.health().status == "ok"
        assert client.ready().status in ("ready", "degraded")


def test_lists_lineage_and_results_as_dataframes_and_archiving(
    client: HokusaiClient, model_dir: Path
) -> None:
    name = unique("sdk-frames")
    with client:
        for accuracy, kind in ((0.80, "baseline"), (0.84, "improved")):
            client.models.register(
                name,
                kind=kind,
                model_type="classification",
                artifact=model_dir,
                metrics={"accuracy": accuracy},
                benchmark=BENCHMARK if kind == "baseline" else None,
                dataset=DATASET,
                contributors=[{"address": CONTRIBUTOR, "weight": 1}]
                if kind == "improved"
                else None,
            )
        versions = client.versions.list(name).to_pandas()
        assert versions["version"].tolist() == [2, 1]
        assert "deltaone.reason" in versions.columns, "nested fields become dotted columns"
        lineage = client.lineage.get(name).to_pandas()
        assert lineage["version"].tolist() == [1, 2]
        assert lineage["parent"].tolist()[1] == 1
        assert lineage["contributors"].tolist() == [0, 1]
        contributions = client.contributors.contributions(CONTRIBUTOR).to_pandas()
        assert name in set(contributions["model"])
        test = client.ab_tests.create(
            name="frames",
            model=name,
            variants=[
                {"name": "control", "version": 1, "weight": 0.5},
                {"name": "treatment", "version": 2, "weight": 0.5},
            ],
            metric={"name": "converted", "kind": "binary"},
        )
        results = client.ab_tests.results(test.id).to_pandas()
        assert results["name"].tolist() == ["control", "treatment"]

        archived = client.versions.archive(name, 2)
        assert archived.archived_at is not None
        assert [v.version for v in client.versions.list(name)] == [1]
        assert [v.version for v in client.versions.list(name, include_archived=True)] == [2, 1]
        assert client.versions.unarchive(name, 2).archived_at is None
        assert client.models.archive(name).archived_at is not None
        assert name not in {m.name for m in client.models.list()}
        assert name in {m.name for m in client.models.list(include_archived=True)}
        with pytest.raises(ConflictError) as refused:
            client.predict(name, rows(1)[0])
        assert refused.value.code == "model_archived"
        assert client.models.unarchive(name).archived_at is None
        assert client.predict(name, rows(1)[0]).version == 2


def test_attestations_are_listed_and_verified(client: HokusaiClient, model_dir: Path) -> None:
    name = unique("sdk-att")
    client.models.register(
        name,
        kind="baseline",
        model_type="classification",
        artifact=model_dir,
        metrics={"accuracy": 0.80},
        benchmark=BENCHMARK,
        dataset=DATASET,
    )
    improved = client.models.register(
        name,
        kind="improved",
        artifact=model_dir,
        metrics={"accuracy": 0.90},
        metric_stds={},
        dataset={**DATASET, "num_samples": 5000},
        contributors=[{"address": CONTRIBUTOR, "weight": 1}],
    )
    attestations = list(client.attestations.list(name))
    if improved.attestation_id is None:  # not accepted: nothing signed, nothing to list
        assert attestations == []
        return
    [attestation] = attestations
    assert client.attestations.get(attestation.id).id == improved.attestation_id
    verification = client.attestations.verify(attestation.envelope.model_dump())
    assert verification.valid
    assert verification.matches_record
    assert client.attestations.verify_chain(name).valid
    assert client.attestations.keys().keys


def test_api_keys_are_created_listed_past_one_page_and_revoked(client: HokusaiClient) -> None:
    created = [client.api_keys.create(f"sdk-{i}", ["read"]) for i in range(505)]
    listed = list(client.api_keys.list())
    assert {k.id for k in created} <= {k.id for k in listed}
    assert len(listed) >= 506, "more than one page of 500"
    client.api_keys.revoke(created[0].id)
    reader = HokusaiClient(client.base_url, created[1].key)
    assert isinstance(next(iter(reader.models.list()), None), Model | type(None))
    assert reader.api_keys.current().model_dump() == {
        "id": created[1].id,
        "name": "sdk-1",
        "scopes": ["read"],
    }
    assert client.api_keys.current().scopes == ["read", "predict", "write", "benchmark", "admin"]


async def test_the_async_client_under_gather(live: LiveService, model_dir: Path) -> None:
    name = unique("sdk-async")
    async with AsyncHokusaiClient(live.url, live.admin_key, max_batch_size=3) as client:
        await client.models.register(
            name,
            kind="baseline",
            model_type="classification",
            artifact=model_dir,
            metrics={"accuracy": 0.80},
            benchmark=BENCHMARK,
            dataset=DATASET,
        )
        inputs = rows(8)
        single, batch, model, versions = await asyncio.gather(
            client.predict(name, inputs[0]),
            client.predict(name, inputs),
            client.models.get(name),
            client.versions.get(name, 1),
        )
        names = [m.name async for m in client.models.list()]
        found = [m.name async for m in client.models.list(search=name.upper()[4:])]
    assert found == [name]
    assert len(batch.predictions) == 8
    assert batch.predictions[0] == single.predictions[0]
    assert model.latest_version == versions.version == 1
    assert name in names


def test_a_scikit_learn_object_is_saved_with_mlflow_and_registered(
    client: HokusaiClient, caplog: pytest.LogCaptureFixture
) -> None:
    from sklearn.linear_model import LogisticRegression

    frame, labels, _ = training_data()
    estimator = LogisticRegression().fit(frame, labels)
    name = unique("sdk-object")
    version = client.models.register(
        name,
        kind="baseline",
        artifact=estimator,
        model_type="classification",
        metrics={"accuracy": 0.8},
        dataset=DATASET,
        benchmark=BENCHMARK,
    )
    prediction = client.predict(name, rows(3))
    assert version.version == 1
    assert prediction.predictions == estimator.predict(frame.iloc[:3]).tolist()
    said = [r.getMessage() for r in caplog.records if r.name.startswith("mlflow")]
    assert not [m for m in said if "pip version" in m], "MLflow's conda.yaml note is not the user's"
    with pytest.raises(ConfigurationError, match="scikit-learn"):
        client.models.register(
            name, kind="baseline", artifact=object(), metrics={}, dataset=DATASET
        )


def test_experiments_runs_and_run_comparison(client: HokusaiClient, model_dir: Path) -> None:
    name = unique("sdk-exp")
    runs = [
        client.models.register(
            name,
            kind="baseline",
            artifact=model_dir,
            model_type="classification",
            metrics={"accuracy": accuracy},
            dataset=DATASET,
            benchmark=BENCHMARK,
        ).artifact.mlflow_run_id
        for accuracy in (0.80, 0.83)
    ]
    assert runs[0] is not None
    assert runs[1] is not None
    experiment = next(e for e in client.experiments.list() if e.name == name)
    assert {r.run_id for r in client.experiments.runs(experiment.experiment_id)} == set(runs)
    by_runs = client.experiments.compare(runs[0], runs[1], metric="accuracy")
    by_version = client.experiments.compare(None, runs[1], model=name, version=1, metric="accuracy")
    assert by_runs.metrics["accuracy"].gain == pytest.approx(0.03)
    assert by_version.metrics["accuracy"].gain == pytest.approx(0.03)
