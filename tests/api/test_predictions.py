"""Predictions against real scikit-learn models registered through the API, with the real Redis
cache, and with Redis failing for real (a closed port, a proxy cut mid-run)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from app.api.routers import prediction_response
from app.core.config import Settings
from app.schemas.predictions import AbTestAssignment, CacheCounts, Prediction
from tests.api.test_errors import assert_problem
from tests.conftest import auth, create_key, serve
from tests.factories import (
    FEATURES,
    PIP,
    register_baseline,
    save_sklearn,
    tar_gz,
    training_data,
    unique,
)
from tests.proxy import Proxy, database_behind_proxy
from tests.services_under_test import free_port

ROWS = [
    {"f0": 0.9, "f1": 0.8, "f2": 0.1},
    {"f0": 0.1, "f1": 0.2, "f2": 0.5},
    {"f0": 0.5, "f1": 0.45, "f2": 0.9},
    {"f0": 0.7, "f1": 0.1, "f2": 0.3},
]


@pytest.fixture(scope="module")
def estimators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, Any]]:
    found = {}
    for kind in ("classifier", "regressor"):
        directory, estimator = save_sklearn(tmp_path_factory.mktemp(kind), kind)
        found[kind] = (tar_gz(directory), estimator)
    return found


def expected(estimator: Any, rows: list[dict[str, float]]) -> list[Any]:
    import pandas as pd

    return list(estimator.predict(pd.DataFrame(rows, columns=FEATURES)).tolist())


async def deploy(
    client: httpx.AsyncClient, key: str, archive: bytes, model_type: str = "classification"
) -> str:
    name = unique()
    metric = {"metric": "score", "direction": "higher_is_better", "family": "continuous"}
    await register_baseline(
        client, key, archive, name, model_type=model_type, metrics={"score": 1.0}, benchmark=metric
    )
    return name


async def predict(client: httpx.AsyncClient, key: str, name: str, **body: Any) -> httpx.Response:
    return await client.post(
        f"/api/v1/models/{name}/predict", json=body, headers=auth(key), timeout=120
    )


async def test_single_rows_match_the_model_and_are_cached(
    client: httpx.AsyncClient, admin_key: str, estimators: dict[str, tuple[bytes, Any]]
) -> None:
    for kind, model_type in (("classifier", "classification"), ("regressor", "regression")):
        archive, estimator = estimators[kind]
        name = await deploy(client, admin_key, archive, model_type)
        first = await predict(client, admin_key, name, inputs=ROWS[0])
        assert first.status_code == 200, first.text
        assert first.headers["x-cache"] == "MISS"
        body = first.json()
        assert body["model"] == name
        assert body["version"] == 1
        assert body["predictions"] == pytest.approx(expected(estimator, ROWS[:1]))
        assert body["cache"] == {"hits": 0, "misses": 1}
        assert body["ab_test"] is None
        second = await predict(client, admin_key, name, inputs=ROWS[0])
        assert second.headers["x-cache"] == "HIT"
        assert second.json()["predictions"] == body["predictions"]
        assert second.json()["cache"] == {"hits": 1, "misses": 0}


async def test_key_order_and_number_spelling_do_not_change_the_cache_key(
    client: httpx.AsyncClient, admin_key: str, estimators: dict[str, tuple[bytes, Any]]
) -> None:
    name = await deploy(client, admin_key, estimators["classifier"][0])
    await predict(client, admin_key, name, inputs={"f0": 1, "f1": 0.5, "f2": 0.25})
    same = await client.post(
        f"/api/v1/models/{name}/predict",
        content=b'{"inputs": {"f2": 2.5e-1, "f1": 0.50, "f0": 1.0}}',
        headers={**auth(admin_key), "content-type": "application/json"},
    )
    assert same.headers["x-cache"] == "HIT"


async def test_whole_numbers_are_accepted_for_double_columns(
    client: httpx.AsyncClient, admin_key: str, estimators: dict[str, tuple[bytes, Any]]
) -> None:
    archive, estimator = estimators["regressor"]
    name = await deploy(client, admin_key, archive, "regression")
    for inputs in (
        {"f0": 1, "f1": 0, "f2": 3},
        [{"f0": 1, "f1": 0, "f2": 3}, {"f0": 2, "f1": 1, "f2": 0}],
    ):
        response = await predict(client, admin_key, name, inputs=inputs)
        assert response.status_code == 200, response.text
        rows = inputs if isinstance(inputs, list) else [inputs]
        assert response.json()["predictions"] == pytest.approx(expected(estimator, rows))


async def test_a_batch_mixes_hits_and_misses_in_order(
    client: httpx.AsyncClient, admin_key: str, estimators: dict[str, tuple[bytes, Any]]
) -> None:
    archive, estimator = estimators["regressor"]
    name = await deploy(client, admin_key, archive, "regression")
    await predict(client, admin_key, name, inputs=[ROWS[1], ROWS[3]])
    response = await predict(client, admin_key, name, inputs=ROWS)
    body = response.json()
    assert "x-cache" not in response.headers
    assert body["cache"] == {"hits": 2, "misses": 2}
    assert body["predictions"] == pytest.approx(expected(estimator, ROWS))


async def test_moving_production_takes_effect_on_the_next_call(
    client: httpx.AsyncClient, admin_key: str, estimators: dict[str, tuple[bytes, Any]]
) -> None:
    classifier, regressor = estimators["classifier"], estimators["regressor"]
    name = await deploy(client, admin_key, classifier[0], "custom")
    metric = {"metric": "score", "direction": "higher_is_better", "family": "continuous"}
    await register_baseline(
        client,
        admin_key,
        regressor[0],
        name,
        model_type=None,
        metrics={"score": 2.0},
        benchmark=metric,
    )
    latest = (await predict(client, admin_key, name, inputs=ROWS[0])).json()
    assert latest["version"] == 2, "no production alias: the latest version answers"
    for version, estimator in ((1, classifier[1]), (2, regressor[1]), (1, classifier[1])):
        await client.put(
            f"/api/v1/models/{name}/aliases/production",
            json={"version": version},
            headers=auth(admin_key),
        )
        body = (await predict(client, admin_key, name, inputs=ROWS[2])).json()
        assert body["version"] == version
        assert body["predictions"] == pytest.approx(expected(estimator, ROWS[2:3]))
    pinned = (await predict(client, admin_key, name, inputs=ROWS[2], version=2)).json()
    assert pinned["version"] == 2
    await client.put(
        f"/api/v1/models/{name}/aliases/staging", json={"version": 2}, headers=auth(admin_key)
    )
    assert (await predict(client, admin_key, name, inputs=ROWS[2], alias="staging")).json()[
        "version"
    ] == 2
    unknown = assert_problem(
        await predict(client, admin_key, name, inputs=ROWS[2], alias="canary"),
        404,
        "version_not_found",
    )
    assert str(unknown["detail"]).endswith(
        "has no alias 'canary'; its aliases: production, staging"
    )
    assert_problem(
        await predict(client, admin_key, name, inputs=ROWS[2], version=9), 404, "version_not_found"
    )
    assert_problem(
        await predict(client, admin_key, "no-such-model", inputs=ROWS[2]), 404, "model_not_found"
    )


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        ({"f0": 0.1, "f1": 0.2}, "missing column 'f2'"),
        ({"f0": 0.1, "f1": 0.2, "f2": 0.3, "colour": "red"}, "unexpected column 'colour'"),
        ({"f0": "high", "f1": 0.2, "f2": 0.3}, "column 'f0' must be double"),
        ({"f0": True, "f1": 0.2, "f2": 0.3}, "column 'f0' must be double"),
        ({"f0": None, "f1": 0.2, "f2": 0.3}, "column 'f0' is null"),
        (
            [{"f0": 0.1, "f1": 0.2, "f2": 0.3}, {"f0": 0.1, "f1": None, "f2": 0.3, "x": 1}],
            "column 'f1' is null; the model's signature requires a value (row 1); "
            "unexpected column 'x' (row 1)",
        ),
        ([{"f0": 0.1, "f1": 0.2, "f2": 0.3}, 7], None),
        ({"f0": 10**400, "f1": 0.2, "f2": 0.3}, "exceeds safe integer domain"),  # the cache key
        (
            [{"f0": 0.1, "f1": 0.2, "f2": 0.3}] * 5 + [{"f0": 0.1, "f1": "0.2", "f2": 0.3}],
            "column 'f1' must be double (row 5)",
        ),
        ([{"f0": 0.1, "f1": 0.2, "f2": 0.3}, {"f0": 0.1, "f2": 0.3, "f3": 0.4}], "'f1'"),
    ],
)
async def test_inputs_that_do_not_fit_the_signature_are_422_naming_the_column(
    client: httpx.AsyncClient,
    admin_key: str,
    estimators: dict[str, tuple[bytes, Any]],
    inputs: Any,
    named: str | None,
) -> None:
    name = await deploy(client, admin_key, estimators["classifier"][0])
    body = assert_problem(
        await predict(client, admin_key, name, inputs=inputs), 422, "validation_failed"
    )
    if named is not None:
        assert named in str(body["detail"])
    if named is not None and "'" in named:
        column = named.split("'")[1]
        assert any(error["loc"][-1] == column for error in body["errors"])  # type: ignore[attr-defined]


async def test_batches_over_the_limit_are_413(
    make_settings: Callable[..., Settings], admin_key: str, estimators: dict[str, tuple[bytes, Any]]
) -> None:
    async with serve(make_settings(prediction_batch_limit=3)) as client:
        name = await deploy(client, admin_key, estimators["classifier"][0])
        response = await predict(client, admin_key, name, inputs=ROWS)
    assert_problem(response, 413, "batch_too_large")


async def test_predict_needs_the_predict_scope(
    client: httpx.AsyncClient, admin_key: str, estimators: dict[str, tuple[bytes, Any]]
) -> None:
    name = await deploy(client, admin_key, estimators["classifier"][0])
    reader = (await create_key(client, admin_key, "read"))["key"]
    gtm = (await create_key(client, admin_key, "predict"))["key"]
    assert_problem(await predict(client, reader, name, inputs=ROWS[0]), 403, "forbidden")
    assert (await predict(client, gtm, name, inputs=ROWS[0])).status_code == 200
    as_header = await client.post(
        f"/api/v1/models/{name}/predict", json={"inputs": ROWS[0]}, headers={"X-API-Key": gtm}
    )
    assert as_header.status_code == 200
    for headers in ({}, {"Authorization": "Basic " + gtm}, auth("hk_" + "x" * 43)):
        response = await client.post(
            f"/api/v1/models/{name}/predict", json={"inputs": ROWS[0]}, headers=headers
        )
        assert_problem(response, 401, "unauthenticated")


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b'{"inputs": {"f0": 0.1', "json_invalid"),
        (b"", "missing"),  # no body at all, as FastAPI says it for every operation
        (b'{"rows": []}', "missing"),
        (b'{"inputs": 3}', "rows_type"),
        (b'{"inputs": {}, "version": "2"}', "int_type"),
    ],
)
async def test_predict_bodies_are_validated_like_any_other(
    client: httpx.AsyncClient, admin_key: str, content: bytes, error: str
) -> None:
    response = await client.post(
        "/api/v1/models/any/predict",
        content=content,
        headers={**auth(admin_key), "Content-Type": "application/json"},
    )
    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"][0]["type"] == error  # type: ignore[index]
    assert body["errors"][0]["loc"][0] == "body"  # type: ignore[index]


async def test_twenty_concurrent_cold_requests_load_the_model_once(
    make_settings: Callable[..., Settings], admin_key: str, estimators: dict[str, tuple[bytes, Any]]
) -> None:
    async with serve(make_settings()) as client:
        name = await deploy(client, admin_key, estimators["classifier"][0])
    async with serve(make_settings()) as client:  # a fresh process-wide loader
        rows = [{"f0": i / 20, "f1": 0.3, "f2": 0.6} for i in range(20)]
        responses = await asyncio.gather(
            *(predict(client, admin_key, name, inputs=row) for row in rows)
        )
        loader = client.app.state.resources.loader  # type: ignore[attr-defined]
        metrics = (await client.get("/metrics")).text
    assert {r.status_code for r in responses} == {200}
    assert loader.loads == 1
    assert "hokusai_loaded_models 1.0" in metrics
    assert (
        'hokusai_model_load_duration_seconds_count{model="' + name + '",outcome="loaded"} 1.0'
        in metrics
    )


async def test_predictions_survive_redis_at_a_closed_port(
    make_settings: Callable[..., Settings], admin_key: str, estimators: dict[str, tuple[bytes, Any]]
) -> None:
    archive, estimator = estimators["classifier"]
    async with serve(make_settings()) as client:
        name = await deploy(client, admin_key, archive)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with serve(make_settings(redis_url=dead, redis_breaker_cooldown_s=60)) as client:
        bodies = [(await predict(client, admin_key, name, inputs=ROWS)).json() for _ in range(5)]
        ready = (await client.get("/ready")).json()
        metrics = (await client.get("/metrics")).text
    for body in bodies:
        assert body["predictions"] == expected(estimator, ROWS)
        assert body["cache"] == {"hits": 0, "misses": 4}
    assert ready["status"] == "degraded"
    assert 'hokusai_cache_operations_total{operation="get",result="skipped"}' in metrics, (
        "breaker opened"
    )


async def test_predictions_survive_redis_cut_mid_run(
    make_settings: Callable[..., Settings],
    admin_key: str,
    estimators: dict[str, tuple[bytes, Any]],
    redis_url: str,
) -> None:
    archive, estimator = estimators["regressor"]
    target = urlsplit(redis_url)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 6379)
    through_proxy = f"redis://127.0.0.1:{proxy.port}{target.path or '/0'}"
    async with serve(make_settings(redis_url=through_proxy)) as client:
        name = await deploy(client, admin_key, archive, "regression")
        warm = (await predict(client, admin_key, name, inputs=ROWS)).json()
        cached = (await predict(client, admin_key, name, inputs=ROWS)).json()
        proxy.cut()
        after = [(await predict(client, admin_key, name, inputs=ROWS)).json() for _ in range(4)]
    assert cached["cache"] == {"hits": 4, "misses": 0}
    want = pytest.approx(expected(estimator, ROWS))
    assert warm["predictions"] == want
    for body in after:
        assert body["predictions"] == want
        assert body["cache"]["misses"] == 4


async def test_a_model_that_cannot_load_is_503_and_retried_next_time(
    make_settings: Callable[..., Settings], admin_key: str, estimators: dict[str, tuple[bytes, Any]]
) -> None:
    async with serve(make_settings()) as client:
        name = await deploy(client, admin_key, estimators["classifier"][0])
    async with serve(
        make_settings(mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}")
    ) as client:
        response = await predict(
            client, admin_key, name, inputs={"f0": 0.123, "f1": 0.2, "f2": 0.3}
        )
        loader = client.app.state.resources.loader  # type: ignore[attr-defined]
        again = await predict(client, admin_key, name, inputs={"f0": 0.123, "f1": 0.2, "f2": 0.3})
    assert_problem(response, 503, "model_unavailable")
    assert int(response.headers["retry-after"]) >= 1
    assert_problem(again, 503, "model_unavailable")
    assert loader.loads == 2, "a failed load is not remembered"


async def test_production_versions_are_loaded_at_start_up(
    make_settings: Callable[..., Settings], admin_key: str, estimators: dict[str, tuple[bytes, Any]]
) -> None:
    async with serve(make_settings()) as client:
        name = await deploy(client, admin_key, estimators["classifier"][0])
        await client.put(
            f"/api/v1/models/{name}/aliases/production",
            json={"version": 1},
            headers=auth(admin_key),
        )
    async with serve(make_settings()) as client:
        loader = client.app.state.resources.loader  # type: ignore[attr-defined]
        for _ in range(600):
            if loader.warmup["status"] == "done":
                break
            await asyncio.sleep(0.1)
        ready = (await client.get("/ready")).json()
        response = await predict(client, admin_key, name, inputs=ROWS[0])
    assert ready["warmup"] == {"status": "done", "loaded": 1, "failed": 0}
    assert response.status_code == 200
    assert loader.loads == 1, "the request found the model already loaded"


def resolutions(metrics: str, source: str) -> float:
    prefix = f'hokusai_version_resolutions_total{{source="{source}"}} '
    found = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(found[0].removeprefix(prefix)) if found else 0.0


async def test_a_move_on_one_replica_counts_on_the_next_call_on_another(
    make_settings: Callable[..., Settings], admin_key: str, estimators: dict[str, tuple[bytes, Any]]
) -> None:
    classifier, regressor = estimators["classifier"], estimators["regressor"]
    settings = make_settings()
    async with serve(settings) as one, serve(settings) as other:
        name = await deploy(one, admin_key, classifier[0], "custom")
        metric = {"metric": "score", "direction": "higher_is_better", "family": "continuous"}
        await register_baseline(
            one,
            admin_key,
            regressor[0],
            name,
            model_type=None,
            metrics={"score": 2.0},
            benchmark=metric,
        )
        seen = []
        for version in (1, 2, 1, 2):
            await other.put(
                f"/api/v1/models/{name}/aliases/production",
                json={"version": version},
                headers=auth(admin_key),
            )
            for _ in range(3):
                seen.append((await predict(one, admin_key, name, inputs=ROWS[1])).json()["version"])
        await other.delete(f"/api/v1/models/{name}/aliases/production", headers=auth(admin_key))
        latest = (await predict(one, admin_key, name, inputs=ROWS[1])).json()["version"]
        metrics = (await one.get("/metrics")).text
    assert seen == [1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2]
    assert latest == 2, "without production, the latest version"
    assert 'route="/api/v1/models/{name}/predict"' in metrics, "the template, never the name"
    assert not [line for line in metrics.splitlines() if "route=" in line and name in line]
    assert resolutions(metrics, "database") == 5, "once after each move"
    assert resolutions(metrics, "memory") == 8, "the rest from memory"


async def test_requests_in_flight_together_share_one_read_of_the_version(
    make_settings: Callable[..., Settings], admin_key: str, estimators: dict[str, tuple[bytes, Any]]
) -> None:
    """When this process must read which version answers (first use, an expired entry, a
    move), the requests in flight for that model read Postgres once, not once each."""
    archive, estimator = estimators["classifier"]
    async with serve(make_settings()) as client:
        name = await deploy(client, admin_key, archive)
        await predict(client, admin_key, name, inputs=ROWS[0])  # loaded
        await client.put(  # a move: every replica reads the version again
            f"/api/v1/models/{name}/aliases/production",
            json={"version": 1},
            headers=auth(admin_key),
        )
        before = (await client.get("/metrics")).text
        answers = await asyncio.gather(
            *(predict(client, admin_key, name, inputs=ROWS[i % 2]) for i in range(20))
        )
        after = (await client.get("/metrics")).text
    assert [answer.json()["predictions"] for answer in answers] == [
        expected(estimator, ROWS[i % 2 : i % 2 + 1]) for i in range(20)
    ]
    read = resolutions(after, "database") - resolutions(before, "database")
    shared = resolutions(after, "shared") - resolutions(before, "shared")
    remembered = resolutions(after, "memory") - resolutions(before, "memory")
    assert read == 1
    assert shared >= 1, "the others waited for that read"
    assert read + shared + remembered == 20


async def test_requests_that_find_no_token_agree_on_one(
    make_settings: Callable[..., Settings], admin_key: str, estimators: dict[str, tuple[bytes, Any]]
) -> None:
    """A source with no token in Redis (first use, a restarted Redis, an expired token): the
    requests in flight write one token between them, the first's, and share one read."""
    import redis.asyncio as redis

    archive, estimator = estimators["classifier"]
    settings = make_settings()
    store = redis.from_url(settings.redis_url)
    async with serve(settings) as client:
        name = await deploy(client, admin_key, archive)
        await predict(client, admin_key, name, inputs=ROWS[0])  # loaded
        token_key = f"{settings.redis_prefix}:model:{name}:token"
        assert await store.delete(token_key) == 1
        before = (await client.get("/metrics")).text
        answers = await asyncio.gather(
            *(predict(client, admin_key, name, inputs=ROWS[i % 2]) for i in range(20))
        )
        after = (await client.get("/metrics")).text
        token = await store.get(token_key)
        again = await predict(client, admin_key, name, inputs=ROWS[0])
        last = (await client.get("/metrics")).text
    await store.aclose()
    assert [answer.status_code for answer in answers] == [200] * 20
    assert token is not None
    assert resolutions(after, "database") - resolutions(before, "database") == 1
    assert resolutions(last, "memory") - resolutions(after, "memory") == 1, "the token held"
    assert again.json()["predictions"] == expected(estimator, ROWS[:1])


async def test_cached_predictions_need_no_database(
    make_settings: Callable[..., Settings],
    admin_key: str,
    estimators: dict[str, tuple[bytes, Any]],
    clean_database: str,
) -> None:
    archive, estimator = estimators["classifier"]
    proxy, through_proxy = database_behind_proxy(clean_database)
    async with serve(make_settings(database_url=through_proxy)) as client:
        name = await deploy(client, admin_key, archive)
        warm = await predict(client, admin_key, name, inputs=ROWS[0])
        proxy.cut()
        cached = await predict(client, admin_key, name, inputs=ROWS[0])
        uncached = await predict(client, admin_key, name, inputs=ROWS[1])
    assert warm.json()["cache"] == {"hits": 0, "misses": 1}
    assert cached.status_code == 200, cached.text
    assert cached.headers["x-cache"] == "HIT"
    assert cached.json()["predictions"] == expected(estimator, ROWS[:1])
    assert uncached.json()["predictions"] == expected(estimator, ROWS[1:2]), "model in memory"


async def test_a_lost_token_sends_the_next_call_to_the_database(
    client: httpx.AsyncClient,
    admin_key: str,
    estimators: dict[str, tuple[bytes, Any]],
    settings: Settings,
) -> None:
    archive, estimator = estimators["regressor"]
    name = await deploy(client, admin_key, archive, "regression")
    for _ in range(2):
        await predict(client, admin_key, name, inputs=ROWS[3])
    cache = client.app.state.resources.cache  # type: ignore[attr-defined]
    token = f"{settings.redis_prefix}:model:{name}:token"
    assert await cache.connection.execute([("DEL", token)]) == [1]
    after = (await predict(client, admin_key, name, inputs=ROWS[3])).json()
    again = (await predict(client, admin_key, name, inputs=ROWS[3])).json()
    metrics = (await client.get("/metrics")).text
    assert (
        after["predictions"]
        == again["predictions"]
        == pytest.approx(expected(estimator, ROWS[3:4]))
    )
    assert resolutions(metrics, "database") == 2, "the first call and the one after the loss"
    assert resolutions(metrics, "memory") == 2


@pytest.fixture(scope="module")
def shaped_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, Any]]:
    """scikit-learn models of three shapes, each with an all-double signature: a plain regressor
    (its runner hands it the float64 matrix), a pipeline whose column transformer picks columns
    by name (it gets a DataFrame), and a classifier saved to answer `predict_proba`."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, labels, targets = training_data()
    made = {
        "plain": (LinearRegression().fit(frame, targets), "predict"),
        "by_name": (
            make_pipeline(
                ColumnTransformer([("scaled", StandardScaler(), ["f2", "f0"])]),
                LinearRegression(),
            ).fit(frame, targets),
            "predict",
        ),
        "proba": (LogisticRegression().fit(frame, labels), "predict_proba"),
    }
    found = {}
    for shape, (estimator, function) in made.items():
        path = tmp_path_factory.mktemp(shape) / "model"
        answers = getattr(estimator, function)(frame)
        mlflow.sklearn.save_model(
            estimator,
            str(path),
            signature=infer_signature(frame, answers),
            pip_requirements=PIP,
            pyfunc_predict_fn=function,
        )
        found[shape] = (tar_gz(path), getattr(estimator, function))
    return found


async def test_answers_are_exactly_the_estimators_own_whatever_its_shape(
    client: httpx.AsyncClient, admin_key: str, shaped_models: dict[str, tuple[bytes, Any]]
) -> None:
    """Bit for bit what the estimator answers for the same rows as a DataFrame (no tolerance):
    batches and single rows, integers in double columns, the function the MLmodel file names."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    batch = [{name: float(rng.normal()) for name in FEATURES} for _ in range(40)]
    batch[0] = {"f0": 2, "f1": -1, "f2": 0}  # JSON integers, for double columns
    for shape, (archive, function) in shaped_models.items():
        name = await deploy(client, admin_key, archive, "regression")
        want = function(pd.DataFrame(batch, columns=FEATURES).astype(float)).tolist()
        response = await predict(client, admin_key, name, inputs=batch)
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == want, shape
        lone = await predict(client, admin_key, name, inputs={"f0": 0.125, "f1": 3.5, "f2": -7})
        row = pd.DataFrame([{"f0": 0.125, "f1": 3.5, "f2": -7.0}], columns=FEATURES)
        assert lone.json()["predictions"] == function(row).tolist(), shape


ANSWERS = [0.1, 1e-7, 1e22, -0.0, 5e-324, 1.7976931348623157e308, 2**63 - 1, -(2**63)]
ANSWERS += [2**64 - 1, 2**70, 'é\u2028\x00"\\', {"a": [1, 2.5, None]}, None, False, [[0.25]]]


@pytest.mark.parametrize("value", ANSWERS)
@pytest.mark.parametrize("ab_test", [None, AbTestAssignment(id="t-1", variant="b")])
def test_an_answer_is_written_byte_for_byte_as_pydantic_writes_it(
    value: Any, ab_test: AbTestAssignment | None
) -> None:
    """`prediction_response` writes by orjson what the `Prediction` model documents; an integer
    past 64 bits, which orjson refuses, by pydantic."""
    result = Prediction(
        model="m", version=3, predictions=[value, 1], cache=CacheCounts(hits=1, misses=1)
    )
    result.ab_test = ab_test
    response = prediction_response(result, single=False)
    assert response.body == result.model_dump_json().encode()
    assert set(orjson.loads(response.body)) == set(Prediction.model_fields)
