"""A/B tests through the API, with real models, Postgres and Redis."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from scipy import stats

from app.core.config import Settings
from app.rules.ab_stats import assign
from tests.api.test_errors import assert_problem
from tests.conftest import auth, serve
from tests.factories import ab_test, register_baseline, save_sklearn, tar_gz, unique
from tests.proxy import database_behind_proxy
from tests.services_under_test import refused_at_commit

ROW = {"f0": 0.3, "f1": 0.6, "f2": 0.9}


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    return [
        tar_gz(save_sklearn(tmp_path_factory.mktemp(kind), kind)[0])
        for kind in ("classifier", "regressor")
    ]


async def two_versions(client: httpx.AsyncClient, key: str, archives: list[bytes]) -> str:
    name = unique()
    metric = {"metric": "score", "direction": "higher_is_better", "family": "continuous"}
    for archive in archives:
        await register_baseline(
            client,
            key,
            archive,
            name,
            model_type="custom",
            metrics={"score": 1.0},
            benchmark=metric,
        )
    await client.put(
        f"/api/v1/models/{name}/aliases/production", json={"version": 1}, headers=auth(key)
    )
    return name


async def create(client: httpx.AsyncClient, key: str, model: str, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "checkout-test",
        "model": model,
        "variants": [
            {"name": "control", "alias": "production", "weight": 0.5},
            {"name": "treatment", "version": 2, "weight": 0.5},
        ],
        "metric": {"name": "converted", "kind": "binary"},
        "minimum_sample_size": 50,
        **fields,
    }
    response = await client.post("/api/v1/ab-tests", json=body, headers=auth(key))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def act(
    client: httpx.AsyncClient, key: str, test_id: str, action: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/api/v1/ab-tests/{test_id}/{action}", json=body, headers=auth(key), timeout=120
    )


async def expose(client: httpx.AsyncClient, key: str, test_id: str, units: list[str]) -> None:
    """Assign each unit once: only exposed units' outcomes count."""
    gate = asyncio.Semaphore(32)

    async def one(unit: str) -> None:
        async with gate:
            response = await act(client, key, test_id, "assign", unit_id=unit)
            assert response.status_code == 200, response.text

    await asyncio.gather(*(one(unit) for unit in units))


async def test_lifecycle_and_one_running_test_per_model(
    client: httpx.AsyncClient, admin_key: str, archives: list[bytes]
) -> None:
    name = await two_versions(client, admin_key, archives)
    test = await create(client, admin_key, name)
    assert test["status"] == "draft"
    assert test["variants"][0] == {
        "name": "control",
        "version": None,
        "alias": "production",
        "weight": 0.5,
    }
    started = (await act(client, admin_key, test["id"], "start")).json()
    assert started["status"] == "running"
    assert started["variants"][0]["version"] == 1, "the alias became a version at start"
    other = await create(client, admin_key, name, name="second")
    assert_problem(await act(client, admin_key, other["id"], "start"), 409, "ab_test_conflict")
    assert_problem(await act(client, admin_key, test["id"], "resume"), 409, "invalid_transition")
    patch = await client.patch(
        f"/api/v1/ab-tests/{test['id']}",
        json={"weights": {"control": 0.2, "treatment": 0.8}},
        headers=auth(admin_key),
    )
    assert_problem(patch, 409, "invalid_transition")
    assert (await act(client, admin_key, test["id"], "pause")).json()["status"] == "paused"
    patched = await client.patch(
        f"/api/v1/ab-tests/{test['id']}",
        json={"weights": {"control": 0.2, "treatment": 0.8}},
        headers=auth(admin_key),
    )
    assert [v["weight"] for v in patched.json()["variants"]] == [0.2, 0.8]
    assert (await act(client, admin_key, test["id"], "resume")).json()["status"] == "running"
    stopped = (await act(client, admin_key, test["id"], "stop")).json()
    assert stopped["status"] == "stopped"
    assert stopped["stopped_at"] is not None
    assert (await act(client, admin_key, other["id"], "start")).json()["status"] == "running"
    listed = (
        await client.get(f"/api/v1/ab-tests?model={name}&status=running", headers=auth(admin_key))
    ).json()
    assert [t["id"] for t in listed["items"]] == [other["id"]]


@pytest.mark.parametrize(
    "variants",
    [
        [{"name": "a", "version": 1, "weight": 0.5}, {"name": "b", "version": 2, "weight": 0.4}],
        [{"name": "a", "version": 1, "weight": 0.5}, {"name": "a", "version": 2, "weight": 0.5}],
        [{"name": "a", "version": 1, "weight": 0.5}, {"name": "b", "version": 1, "weight": 0.5}],
        [{"name": "a", "version": 1, "weight": 1.0}],
    ],
)
async def test_bad_variants_are_422(
    client: httpx.AsyncClient, admin_key: str, variants: list[dict[str, Any]]
) -> None:
    body = {
        "name": "t",
        "model": "m",
        "variants": variants,
        "metric": {"name": "x", "kind": "binary"},
    }
    assert_problem(
        await client.post("/api/v1/ab-tests", json=body, headers=auth(admin_key)),
        422,
        "validation_failed",
    )


async def test_assignment_is_sticky_and_predictions_route_through_the_test(
    client: httpx.AsyncClient, admin_key: str, archives: list[bytes]
) -> None:
    name = await two_versions(client, admin_key, archives)
    test = await create(client, admin_key, name)
    await act(client, admin_key, test["id"], "start")
    for unit in ("u-1", "u-2", "u-3", "u-4", "u-5"):
        expected = ["control", "treatment"][assign(test["id"], unit, [0.5, 0.5])]
        first = (await act(client, admin_key, test["id"], "assign", unit_id=unit)).json()
        again = (await act(client, admin_key, test["id"], "assign", unit_id=unit)).json()
        assert first["variant"] == again["variant"] == expected
        assert first["version"] == (1 if expected == "control" else 2)
        routed = (
            await act(client, admin_key, test["id"], "predict", unit_id=unit, inputs=ROW)
        ).json()
        assert routed["ab_test"] == {"id": test["id"], "variant": expected}
        assert routed["version"] == first["version"]
        via_model = (
            await client.post(
                f"/api/v1/models/{name}/predict",
                json={"inputs": ROW, "unit_id": unit},
                headers=auth(admin_key),
            )
        ).json()
        assert via_model["ab_test"] == {"id": test["id"], "variant": expected}
    plain = (
        await client.post(
            f"/api/v1/models/{name}/predict", json={"inputs": ROW}, headers=auth(admin_key)
        )
    ).json()
    assert plain["ab_test"] is None
    assert plain["version"] == 1
    results = (
        await client.get(f"/api/v1/ab-tests/{test['id']}/results", headers=auth(admin_key))
    ).json()
    assert sum(v["exposures"] for v in results["variants"]) == 5, "each unit counted once"


async def test_results_match_scipy_and_promotion_moves_production(
    client: httpx.AsyncClient, admin_key: str, archives: list[bytes]
) -> None:
    name = await two_versions(client, admin_key, archives)
    test = await create(client, admin_key, name, metric={"name": "revenue", "kind": "continuous"})
    await act(client, admin_key, test["id"], "start")
    assert_problem(
        await act(client, admin_key, test["id"], "promote", variant="treatment"),
        409,
        "not_significant",
    )
    raw: dict[int, list[float]] = {0: [], 1: []}
    events = []
    for unit in range(400):
        arm = assign(test["id"], f"user-{unit}", [0.5, 0.5])
        value = 10.0 + (unit % 7) + (4.0 if arm == 1 else 0.0)
        raw[arm].append(value)
        events.append({"unit_id": f"user-{unit}", "value": value})
    await expose(client, admin_key, test["id"], [f"user-{unit}" for unit in range(400)])
    never_exposed = [{"unit_id": f"stranger-{unit}", "value": 1000.0} for unit in range(30)]
    accepted = await act(client, admin_key, test["id"], "outcomes", events=events + never_exposed)
    assert accepted.json() == {"accepted": 400, "ignored": 30}
    results = (
        await client.get(f"/api/v1/ab-tests/{test['id']}/results", headers=auth(admin_key))
    ).json()
    welch = stats.ttest_ind(raw[1], raw[0], equal_var=False)
    [comparison] = results["comparisons"]
    assert comparison["p_value"] == pytest.approx(welch.pvalue, abs=1e-6)
    assert comparison["absolute_lift"] == pytest.approx(
        sum(raw[1]) / len(raw[1]) - sum(raw[0]) / len(raw[0]), abs=1e-6
    )
    assert results["variants"][0]["std"] == pytest.approx(stats.tstd(raw[0]), abs=1e-6)
    for variant, values in zip(results["variants"], raw.values(), strict=True):
        expected = stats.t.interval(
            0.95, len(values) - 1, loc=stats.tmean(values), scale=stats.sem(values)
        )
        assert (variant["ci_low"], variant["ci_high"]) == pytest.approx(expected, abs=1e-6)
    assert results["verdict"] == "treatment_better"
    promoted = (await act(client, admin_key, test["id"], "promote", variant="treatment")).json()
    assert promoted["winner"] == "treatment"
    assert promoted["status"] == "stopped"
    after = (
        await client.post(
            f"/api/v1/models/{name}/predict", json={"inputs": ROW}, headers=auth(admin_key)
        )
    ).json()
    assert after["version"] == 2
    history = (
        await client.get(
            f"/api/v1/models/{name}/aliases/production/history", headers=auth(admin_key)
        )
    ).json()
    assert history[-1]["reason"] == "A/B test checkout-test: promoted treatment"


async def test_binary_outcomes_must_be_0_or_1_and_drafts_take_none(
    client: httpx.AsyncClient, admin_key: str, archives: list[bytes]
) -> None:
    name = await two_versions(client, admin_key, archives)
    test = await create(client, admin_key, name)
    assert_problem(
        await act(client, admin_key, test["id"], "outcomes", events=[{"unit_id": "u", "value": 1}]),
        409,
        "invalid_transition",
    )
    await act(client, admin_key, test["id"], "start")
    events = [
        {"unit_id": "u1", "value": 1},
        {"unit_id": "u2", "value": 0},
        {"unit_id": "u3", "value": 0.5},
    ]
    problem = assert_problem(
        await act(client, admin_key, test["id"], "outcomes", events=events),
        422,
        "validation_failed",
    )
    assert problem["errors"][0]["loc"] == ["body", "events", 2, "value"]  # type: ignore[index]
    results = await client.get(f"/api/v1/ab-tests/{test['id']}/results", headers=auth(admin_key))
    assert sum(v["n"] for v in results.json()["variants"]) == 0  # the batch is refused whole
    too_many = [{"unit_id": f"u{i}", "value": 1} for i in range(10_001)]
    assert_problem(
        await act(client, admin_key, test["id"], "outcomes", events=too_many),
        422,
        "validation_failed",
    )


async def test_fifty_concurrent_outcome_posters_lose_nothing(
    client: httpx.AsyncClient, admin_key: str, archives: list[bytes]
) -> None:
    name = await two_versions(client, admin_key, archives)
    test = await create(client, admin_key, name)
    await act(client, admin_key, test["id"], "start")
    batches = [
        [{"unit_id": f"p{poster}-u{i}", "value": (poster + i) % 2} for i in range(20)]
        for poster in range(50)
    ]
    await expose(client, admin_key, test["id"], [e["unit_id"] for b in batches for e in b])
    responses = await asyncio.gather(
        *(act(client, admin_key, test["id"], "outcomes", events=batch) for batch in batches)
    )
    assert {r.status_code for r in responses} == {200}
    results = (
        await client.get(f"/api/v1/ab-tests/{test['id']}/results", headers=auth(admin_key))
    ).json()
    assert sum(v["n"] for v in results["variants"]) == 1000
    ones = sum(e["value"] for batch in batches for e in batch)
    assert sum(round(v["n"] * v["mean"]) for v in results["variants"] if v["n"]) == ones


async def test_a_retried_outcome_batch_with_its_idempotency_key_counts_once(
    client: httpx.AsyncClient, admin_key: str, archives: list[bytes]
) -> None:
    name = await two_versions(client, admin_key, archives)
    test = await create(client, admin_key, name)
    await act(client, admin_key, test["id"], "start")
    url = f"/api/v1/ab-tests/{test['id']}/outcomes"
    batch = {"events": [{"unit_id": f"u{i}", "value": i % 2} for i in range(100)]}
    await expose(client, admin_key, test["id"], [f"u{i}" for i in range(100)])
    keyed = {**auth(admin_key), "Idempotency-Key": "batch-1"}
    first, retry = [await client.post(url, json=batch, headers=keyed) for _ in range(2)]
    other = await client.post(url, json={"events": batch["events"][:10]}, headers=keyed)
    results = await client.get(f"/api/v1/ab-tests/{test['id']}/results", headers=auth(admin_key))
    assert first.status_code == retry.status_code == 200
    assert first.json() == retry.json() == {"accepted": 100, "ignored": 0}
    assert retry.headers["idempotent-replayed"] == "true"
    assert_problem(other, 409, "idempotency_conflict")
    assert sum(v["n"] for v in results.json()["variants"]) == 100


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # the http.server hook
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


async def test_webhooks_are_signed_and_report_status_and_verdict_changes(
    make_settings: Callable[..., Settings], admin_key: str, archives: list[bytes], receiver: str
) -> None:
    secret = "whsec-test-secret"
    async with serve(make_settings(webhook_secret=secret)) as client:
        name = await two_versions(client, admin_key, archives)
        test = await create(client, admin_key, name, webhook_url=receiver)
        await act(client, admin_key, test["id"], "start")
        await client.get(f"/api/v1/ab-tests/{test['id']}/results", headers=auth(admin_key))
        await client.app.state.resources.webhooks.drain()  # type: ignore[attr-defined]
    events = []
    for headers, body in Receiver.received:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Hokusai-Signature"] == expected
        events.append(json.loads(body))
    kinds = [(e["type"], e.get("to")) for e in events]
    assert ("ab_test.status_changed", "running") in kinds
    assert ("ab_test.verdict_changed", "insufficient_data") in kinds


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5000/api/2.0/mlflow/experiments/create",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8000/",
        "http://10.0.0.7/hook",
        "http://localhost:6379/",
        # IPv6 forms that hold a private IPv4 address: IPv4-compatible, SIIT, NAT64, 6to4.
        "http://[::127.0.0.1]:8000/",
        "http://[::ffff:0:127.0.0.1]:8000/",
        "http://[64:ff9b::7f00:1]:8000/",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "http://[2002:7f00:1::1]:8000/",
    ],
)
async def test_a_webhook_aimed_at_a_private_address_is_refused_at_creation(
    make_settings: Callable[..., Settings], admin_key: str, archives: list[bytes], url: str
) -> None:
    async with serve(make_settings(webhook_allow_private_networks=False)) as client:
        name = await two_versions(client, admin_key, archives)
        response = await client.post(
            "/api/v1/ab-tests", json=ab_test(name, webhook_url=url), headers=auth(admin_key)
        )
    problem = assert_problem(response, 422, "validation_failed")
    assert problem["errors"][0]["loc"] == ["body", "webhook_url"]  # type: ignore[index]


async def test_a_webhook_host_that_resolves_to_a_private_address_is_never_called(
    make_settings: Callable[..., Settings], admin_key: str, archives: list[bytes], receiver: str
) -> None:
    port = urlsplit(receiver).port
    by_name = f"http://{socket.gethostname()}:{port}/hook"  # this machine's own name
    async with serve(make_settings(webhook_allow_private_networks=False)) as client:
        name = await two_versions(client, admin_key, archives)
        test = await create(client, admin_key, name, webhook_url=by_name)
        await act(client, admin_key, test["id"], "start")
        await client.app.state.resources.webhooks.drain()  # type: ignore[attr-defined]
        metrics = (await client.get("/metrics")).text
    assert Receiver.received == []
    assert 'hokusai_webhook_deliveries_total{outcome="refused"} 1.0' in metrics


def webhook_kinds() -> list[tuple[str, str]]:
    return [(e["type"], e["to"]) for e in (json.loads(body) for _, body in Receiver.received)]


async def test_a_change_whose_commit_fails_sends_no_webhook(
    client: httpx.AsyncClient,
    admin_key: str,
    archives: list[bytes],
    receiver: str,
    database_url: str,
) -> None:
    name = await two_versions(client, admin_key, archives)
    test = await create(client, admin_key, name, webhook_url=receiver)
    await act(client, admin_key, test["id"], "start")
    with refused_at_commit(database_url, "ab_tests", "UPDATE", "NEW.status = 'paused'"):
        refused = await act(client, admin_key, test["id"], "pause")
    await act(client, admin_key, test["id"], "stop")
    await client.app.state.resources.webhooks.drain()  # type: ignore[attr-defined]
    assert_problem(refused, 500, "internal_error")
    kinds = webhook_kinds()
    assert ("ab_test.status_changed", "running") in kinds
    assert ("ab_test.status_changed", "stopped") in kinds
    assert ("ab_test.status_changed", "paused") not in kinds


async def test_a_verdict_that_moves_is_announced_once_by_concurrent_readers(
    client: httpx.AsyncClient, admin_key: str, archives: list[bytes], receiver: str
) -> None:
    name = await two_versions(client, admin_key, archives)
    test = await create(client, admin_key, name, webhook_url=receiver)
    await act(client, admin_key, test["id"], "start")
    url = f"/api/v1/ab-tests/{test['id']}/results"
    readers = await asyncio.gather(*(client.get(url, headers=auth(admin_key)) for _ in range(20)))
    await client.app.state.resources.webhooks.drain()  # type: ignore[attr-defined]
    assert {r.status_code for r in readers} == {200}
    verdicts = [k for k in webhook_kinds() if k[0] == "ab_test.verdict_changed"]
    assert verdicts == [("ab_test.verdict_changed", "insufficient_data")]


async def test_a_test_stops_by_itself_at_its_end_time(
    client: httpx.AsyncClient, admin_key: str, archives: list[bytes]
) -> None:
    from datetime import UTC, datetime, timedelta

    name = await two_versions(client, admin_key, archives)
    ends = datetime.now(UTC) + timedelta(seconds=1)
    test = await create(client, admin_key, name, ends_at=ends.isoformat())
    assert (await act(client, admin_key, test["id"], "start")).json()["status"] == "running"
    before = await act(client, admin_key, test["id"], "assign", unit_id="u-1")
    await asyncio.sleep(1.2)
    assert_problem(
        await act(client, admin_key, test["id"], "assign", unit_id="u-1"), 409, "invalid_transition"
    )
    after = (await client.get(f"/api/v1/ab-tests/{test['id']}", headers=auth(admin_key))).json()
    assert before.status_code == 200, "remembered by the process while running"
    assert after["status"] == "stopped"
    assert after["stopped_at"] is not None


async def test_a_pause_on_one_replica_counts_on_the_next_assignment_on_another(
    make_settings: Callable[..., Settings], admin_key: str, archives: list[bytes]
) -> None:
    settings = make_settings()
    async with serve(settings) as one, serve(settings) as other:
        name = await two_versions(one, admin_key, archives)
        test = await create(one, admin_key, name)
        await act(one, admin_key, test["id"], "start")
        statuses = [(await act(one, admin_key, test["id"], "assign", unit_id="u")).status_code]
        statuses.append((await act(one, admin_key, test["id"], "assign", unit_id="u")).status_code)
        await act(other, admin_key, test["id"], "pause")
        paused = await act(one, admin_key, test["id"], "assign", unit_id="u")
        await act(other, admin_key, test["id"], "resume")
        statuses.append((await act(one, admin_key, test["id"], "assign", unit_id="u")).status_code)
    assert statuses == [200, 200, 200]
    assert_problem(paused, 409, "invalid_transition")


async def test_concurrent_assignments_count_each_unit_once(
    client: httpx.AsyncClient, admin_key: str, archives: list[bytes]
) -> None:
    name = await two_versions(client, admin_key, archives)
    test = await create(client, admin_key, name)
    await act(client, admin_key, test["id"], "start")
    units = [f"unit-{i}" for i in range(60)]
    answers = await asyncio.gather(
        *(act(client, admin_key, test["id"], "assign", unit_id=u) for u in units * 4)
    )
    results = (
        await client.get(f"/api/v1/ab-tests/{test['id']}/results", headers=auth(admin_key))
    ).json()
    assert {a.status_code for a in answers} == {200}
    treated = sum(assign(test["id"], u, [0.5, 0.5]) for u in units)
    assert [v["exposures"] for v in results["variants"]] == [60 - treated, treated]


async def test_assignment_with_the_database_gone_is_a_fast_503_unless_the_unit_returns(
    make_settings: Callable[..., Settings],
    admin_key: str,
    archives: list[bytes],
    clean_database: str,
) -> None:
    proxy, through_proxy = database_behind_proxy(clean_database)
    async with serve(make_settings(database_url=through_proxy, database_timeout_s=1)) as client:
        name = await two_versions(client, admin_key, archives)
        test = await create(client, admin_key, name)
        await act(client, admin_key, test["id"], "start")
        known = await act(client, admin_key, test["id"], "assign", unit_id="seen")
        proxy.cut()
        started = time.perf_counter()
        lost = await act(client, admin_key, test["id"], "assign", unit_id="new")
        elapsed = time.perf_counter() - started
        returning = await act(client, admin_key, test["id"], "assign", unit_id="seen")
    assert known.status_code == 200
    assert returning.status_code == 200, "its exposure is known committed: nothing to write"
    assert returning.json() == known.json()
    assert_problem(lost, 503, "database_unavailable")
    assert int(lost.headers["retry-after"]) >= 1
    assert elapsed < 5


async def model_predict(client: httpx.AsyncClient, key: str, name: str, unit: str) -> Any:
    response = await client.post(
        f"/api/v1/models/{name}/predict",
        json={"inputs": ROW, "unit_id": unit},
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_test_started_or_paused_on_one_replica_routes_the_next_prediction_on_another(
    make_settings: Callable[..., Settings], admin_key: str, archives: list[bytes]
) -> None:
    settings = make_settings()
    async with serve(settings) as one, serve(settings) as other:
        name = await two_versions(one, admin_key, archives)
        routed = [(await model_predict(one, admin_key, name, "u-1"))["ab_test"]]
        test = await create(other, admin_key, name)
        await act(other, admin_key, test["id"], "start")
        routed.append((await model_predict(one, admin_key, name, "u-1"))["ab_test"])
        await act(other, admin_key, test["id"], "pause")
        routed.append((await model_predict(one, admin_key, name, "u-1"))["ab_test"])
        await act(other, admin_key, test["id"], "resume")
        routed.append((await model_predict(one, admin_key, name, "u-1"))["ab_test"])
    variant = ["control", "treatment"][assign(test["id"], "u-1", [0.5, 0.5])]
    routed_through = {"id": test["id"], "variant": variant}
    assert routed == [None, routed_through, None, routed_through]


async def test_predictions_naming_a_unit_of_a_model_without_a_test_need_no_database(
    make_settings: Callable[..., Settings],
    admin_key: str,
    archives: list[bytes],
    clean_database: str,
) -> None:
    proxy, through_proxy = database_behind_proxy(clean_database)
    async with serve(make_settings(database_url=through_proxy, database_timeout_s=1)) as client:
        name = await two_versions(client, admin_key, archives)
        warm = await model_predict(client, admin_key, name, "u-1")
        proxy.cut()
        after = await model_predict(client, admin_key, name, "u-2")
    assert warm["ab_test"] is None
    assert after["ab_test"] is None
    assert after["version"] == 1
