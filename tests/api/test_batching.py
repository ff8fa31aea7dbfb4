"""Adaptive micro-batching of model calls, against real models: concurrent uncached requests are
answered by gathered model calls, and every request still gets exactly its own rows' answers."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from tests.api.test_errors import assert_problem
from tests.api.test_predictions import deploy, expected, predict
from tests.conftest import serve
from tests.factories import FEATURES, PIP, save_sklearn, tar_gz, training_data


def model_calls(metrics: str, model: str, mode: str) -> float:
    found = re.search(
        rf'^hokusai_model_calls_total{{mode="{mode}",model="{re.escape(model)}"}} (\S+)$',
        metrics,
        flags=re.MULTILINE,
    )
    return float(found.group(1)) if found else 0.0


def rows(rng: random.Random, count: int) -> list[dict[str, float]]:
    return [{name: rng.random() for name in FEATURES} for _ in range(count)]


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bytes, Any]]:
    found = []
    for kind in ("classifier", "regressor"):
        directory, estimator = save_sklearn(tmp_path_factory.mktemp(kind), kind)
        found.append((tar_gz(directory), estimator))
    return found


async def test_concurrent_requests_share_model_calls_and_get_their_own_rows(
    client: httpx.AsyncClient, admin_key: str, two_models: list[tuple[bytes, Any]]
) -> None:
    (classifier, classifier_model), (regressor, regressor_model) = two_models
    name = await deploy(client, admin_key, classifier)
    await deploy_version(client, admin_key, name, regressor)  # version 2: another model
    estimators = {1: classifier_model, 2: regressor_model}
    rng = random.Random(11)

    lone = rows(rng, 1)  # an idle server: the call runs at once, alone
    response = await predict(client, admin_key, name, inputs=lone[0], version=1)
    assert response.json()["predictions"] == pytest.approx(expected(classifier_model, lone))
    metrics = (await client.get("/metrics")).text
    assert model_calls(metrics, name, "alone") == 1
    assert model_calls(metrics, name, "gathered") == 0

    asked = []
    for index in range(80):  # both versions, single rows and batches, every row new
        version = 1 + index % 2
        batch = rows(rng, 1 + index % 7)
        inputs: Any = batch[0] if len(batch) == 1 else batch
        asked.append(
            (version, batch, predict(client, admin_key, name, inputs=inputs, version=version))
        )
    answers = await asyncio.gather(*(call for _, _, call in asked))
    for (version, batch, _), answer in zip(asked, answers, strict=True):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["version"] == version
        assert body["cache"] == {"hits": 0, "misses": len(batch)}
        assert body["predictions"] == pytest.approx(expected(estimators[version], batch))

    metrics = (await client.get("/metrics")).text
    gathered = model_calls(metrics, name, "gathered")
    alone = model_calls(metrics, name, "alone")
    assert gathered > 0, "concurrent requests were gathered"
    assert gathered + alone < 81, "fewer model calls than requests"


async def deploy_version(client: httpx.AsyncClient, key: str, name: str, archive: bytes) -> None:
    from tests.factories import register_baseline

    metric = {"metric": "score", "direction": "higher_is_better", "family": "continuous"}
    await register_baseline(client, key, archive, name, metrics={"score": 1.0}, benchmark=metric)


@pytest.fixture(scope="module")
def unsigned(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Any]:
    """A model without a signature: the service cannot check its rows, so a row missing a
    column reaches the model, which refuses it (NaN in the frame)."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    frame, labels, _ = training_data()
    estimator = LogisticRegression().fit(frame, labels)
    path = tmp_path_factory.mktemp("unsigned") / "model"
    mlflow.sklearn.save_model(estimator, str(path), pip_requirements=PIP)
    return tar_gz(path), estimator


async def test_a_row_the_model_refuses_fails_only_its_own_request(
    client: httpx.AsyncClient, admin_key: str, unsigned: tuple[bytes, Any]
) -> None:
    archive, estimator = unsigned
    name = await deploy(client, admin_key, archive)
    rng = random.Random(5)
    good = [rows(rng, 3) for _ in range(30)]
    bad = [[{"f0": 0.5, "f1": 0.5}] for _ in range(3)]  # no f2
    requests = [*good[:10], bad[0], *good[10:20], bad[1], *good[20:], bad[2]]
    answers = await asyncio.gather(
        *(predict(client, admin_key, name, inputs=batch) for batch in requests)
    )
    for batch, answer in zip(requests, answers, strict=True):
        if batch in bad:
            assert_problem(answer, 422, "model_failed")
        else:
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == pytest.approx(expected(estimator, batch))
    metrics = (await client.get("/metrics")).text
    assert model_calls(metrics, name, "gathered") > 0, "the failing rows were gathered with others"


async def test_batching_can_be_turned_off(
    make_settings: Callable[..., Settings], admin_key: str, two_models: list[tuple[bytes, Any]]
) -> None:
    """Each request alone, and none waits for company (the wait is 1 s here: 20 requests queued
    behind one runner would take 19 s or more if each call waited)."""
    archive, estimator = two_models[0]
    settings = make_settings(prediction_batching=False, prediction_batch_max_wait_ms=1000)
    async with serve(settings) as client:
        name = await deploy(client, admin_key, archive)
        batches = rows(random.Random(3), 21)
        # Loaded first (a model's first call waits for its runner to start).
        assert (await predict(client, admin_key, name, inputs=batches.pop())).status_code == 200
        started = time.monotonic()
        answers = await asyncio.gather(
            *(predict(client, admin_key, name, inputs=row) for row in batches)
        )
        assert time.monotonic() - started < 5
        assert [a.json()["predictions"][0] for a in answers] == pytest.approx(
            expected(estimator, batches)
        )
        metrics = (await client.get("/metrics")).text
    assert model_calls(metrics, name, "alone") == 21
    assert model_calls(metrics, name, "gathered") == 0
