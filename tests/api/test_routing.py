"""The short request engine (`app/api/routing.py`) serves only the operations marked `@short`,
refuses at start-up a mark it cannot honour, and answers exactly as FastAPI's own engine does:
the same requests (valid, a body that does not parse, one that does not validate, the wrong media
type, no key, a bad path parameter) replayed through both give the same status, headers and body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Response

from app.api.routing import Route, short
from app.core.config import Settings
from tests.api.test_server import running
from tests.conftest import auth, serve
from tests.factories import ab_test, baseline, save_sklearn, tar_gz, unique, upload

MARKED = {"predict", "assign_unit", "predict_through_test"}
# What differs between any two answers, whichever engine: the request's own id.
PER_REQUEST = {"x-request-id", "date", "content-length"}


def test_only_marked_operations_get_the_short_engine(settings: Settings) -> None:
    from app.main import create_app

    app = create_app(settings)
    served_short = {r.name for r in app.routes if isinstance(r, Route) and r.short is not None}
    assert served_short == MARKED


def test_a_mark_the_short_engine_cannot_honour_stops_the_app_from_starting() -> None:
    router = APIRouter(route_class=Route)

    async def listing(limit: int = 10) -> Response:
        return Response(str(limit))

    with pytest.raises(TypeError, match="listing is marked @short but takes query parameters"):
        router.add_api_route("/things", short(listing), methods=["GET"])


async def test_both_engines_answer_every_marked_request_alike(
    make_settings: Callable[..., Settings], admin_key: str, tmp_path: Any
) -> None:
    name = unique()
    archive = tar_gz(save_sklearn(tmp_path)[0])
    row = {"f0": 0.1, "f1": 0.2, "f2": 0.3}
    # Caching off: the same row twice is two model calls, so both answers can be the same.
    async with serve(make_settings(redis_url=None)) as client:
        for _ in range(2):
            assert (await upload(client, admin_key, baseline(name), archive)).status_code == 201
        created = await client.post("/api/v1/ab-tests", json=ab_test(name), headers=auth(admin_key))
        test_id = created.json()["id"]
        assert (
            await client.post(f"/api/v1/ab-tests/{test_id}/start", headers=auth(admin_key))
        ).status_code == 200
        key = auth(admin_key)
        cases: dict[str, list[tuple[str, dict[str, str], bytes]]] = {
            "predict": [
                (f"/api/v1/models/{name}/predict", key, _json({"inputs": row})),
                (f"/api/v1/models/{name}/predict", key, _json({"inputs": [row, row]})),
                (f"/api/v1/models/{name}/predict", key, b'{"inputs": '),
                (f"/api/v1/models/{name}/predict", key, b""),
                (f"/api/v1/models/{name}/predict", key, b"\xff\xfe"),
                (f"/api/v1/models/{name}/predict", key, b"[" * 5000),
                (f"/api/v1/models/{name}/predict", key, _json({"inputs": "nope"})),
                (f"/api/v1/models/{name}/predict", key, _json({"inputs": {"x": 1}})),
                (f"/api/v1/models/{name}/predict", {**key, "content-type": "text/plain"}, b"{}"),
                (f"/api/v1/models/{name}/predict", {}, _json({"inputs": row})),
                ("/api/v1/models/no-such-model/predict", key, _json({"inputs": row})),
            ],
            "assign_unit": [
                (f"/api/v1/ab-tests/{test_id}/assign", key, _json({"unit_id": "lead-1"})),
                (f"/api/v1/ab-tests/{test_id}/assign", key, _json({})),
                (f"/api/v1/ab-tests/{test_id}/assign", key, b"[1"),
                ("/api/v1/ab-tests/not-a-uuid/assign", key, _json({"unit_id": "lead-1"})),
                (f"/api/v1/ab-tests/{test_id}/assign", {}, _json({"unit_id": "lead-1"})),
            ],
            "predict_through_test": [
                (
                    f"/api/v1/ab-tests/{test_id}/predict",
                    key,
                    _json({"unit_id": "lead-1", "inputs": row}),
                ),
                (f"/api/v1/ab-tests/{test_id}/predict", key, _json({"inputs": row})),
                (
                    f"/api/v1/ab-tests/{test_id}/predict",
                    {**key, "content-type": "application/xml"},
                    b"<x/>",
                ),
            ],
        }
        assert set(cases) == MARKED
        app = client.app  # type: ignore[attr-defined]
        await client.get("/health")  # the middleware stack is built on the first request

        async def full_stack(scope: Any, receive: Any, send: Any) -> None:
            """The app without its lane for marked routes: FastAPI's middleware and router."""
            scope["app"] = app
            await app.middleware_stack.stack(scope, receive, send)

        transport = httpx.ASGITransport(app=full_stack, raise_app_exceptions=False)
        answered: list[tuple[str, dict[str, str], bytes, Any]] = []
        async with httpx.AsyncClient(transport=transport, base_url=client.base_url) as standard:
            for route in app.routes:
                if not isinstance(route, Route) or route.name not in MARKED:
                    continue
                short_app = route.app
                for path, headers, body in cases[route.name]:
                    answer = await _post(client, path, headers, body)  # the lane, short engine
                    answered.append((path, headers, body, answer))
                    route.app = route.standard
                    try:
                        assert answer == await _post(standard, path, headers, body), (
                            route.name,
                            path,
                            body,
                        )
                    finally:
                        route.app = short_app

        # Over a socket, the connection's direct lane answers alike (and the ASGI lane is not
        # used: it would fail every request).
        lane = app.middleware_stack
        asgi_lane, lane.served = lane.served, _not_used
        try:
            async with (
                running(app) as port,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as direct,
            ):
                for path, headers, body, answer in answered:
                    assert await _post(direct, path, headers, body) == answer, (path, body)
        finally:
            lane.served = asgi_lane


async def _not_used(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError(f"{scope['path']} went through ASGI")


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()


async def _post(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], Any]:
    sent = {"content-type": "application/json", **headers}
    response = await client.post(path, content=body, headers=sent)
    kept = {k: v for k, v in response.headers.items() if k not in PER_REQUEST | {"server"}}
    answer = response.json()
    if isinstance(answer, dict):
        answer.pop("request_id", None)
    return response.status_code, kept, answer
