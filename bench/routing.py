"""What routing costs per request, in-process (ASGI calls, no network, no database): the same
prediction-shaped operation (a path parameter, a JSON body, the API key's dependencies, a service
dependency) served by

- a plain Starlette route that does the same work by hand (the reference),
- FastAPI's own route and dependency solving, at the app's top level and in an included router,
- the service's `Route` (`app/api/routing.py`), at the app's top level, as the app serves it.

    .venv/bin/python bench/routing.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi import APIRouter, Depends, FastAPI, Request, Response, Security  # noqa: E402
from fastapi.routing import APIRoute  # noqa: E402
from fastapi.security import APIKeyHeader, HTTPBearer  # noqa: E402
from fastapi.security.utils import get_authorization_scheme_param  # noqa: E402
from pydantic import BaseModel  # noqa: E402
from starlette.routing import Route as StarletteRoute  # noqa: E402

from app.api.routing import Route, include, parsed  # noqa: E402
from app.main import TELEMETRY_OFF  # noqa: E402

PATH = "/api/v1/models/{name}/predict"
BODY = json.dumps({"inputs": {"f0": 0.1, "f1": 0.2, "f2": 0.3}}).encode()


class Body(BaseModel):
    inputs: dict[str, float]
    unit_id: str | None = None


class Service:
    def __init__(self, *parts: Any) -> None:
        self.parts = parts


bearer = HTTPBearer(auto_error=False)
header = APIKeyHeader(name="X-API-Key", auto_error=False)
RESOURCES = object()


async def get_resources(request: Request) -> object:
    return RESOURCES


Resources = Annotated[object, Depends(get_resources)]


async def authenticate(
    request: Request,
    resources: Resources,
    token: Annotated[Any, Security(bearer)],
    key: Annotated[str | None, Security(header)],
) -> str:
    return "principal"


async def scoped(principal: Annotated[str, Depends(authenticate)], resources: Resources) -> str:
    return principal


async def get_service(resources: Resources) -> Service:
    return Service(resources)


async def declared(
    name: str,
    body: Body,
    _: Annotated[str, Depends(scoped)],
    service: Annotated[Service, Depends(get_service)],
) -> Response:
    return Response(b"{}", media_type="application/json")


async def by_hand(request: Request) -> Response:
    get_authorization_scheme_param(request.headers.get("authorization"))
    request.headers.get("x-api-key")
    parsed(Body, await request.body())
    Service(RESOURCES)
    return Response(b"{}", media_type="application/json")


def app(kind: str) -> FastAPI:
    built = FastAPI(telemetry=TELEMETRY_OFF, docs_url=None, redoc_url=None, openapi_url=None)
    if kind == "starlette":
        built.router.routes.append(StarletteRoute(PATH, by_hand, methods=["POST"]))
    elif kind == "fastapi, top level":
        built.router.routes.append(APIRoute(PATH, declared, methods=["POST"]))
    elif kind == "fastapi, included router":
        router = APIRouter(prefix="/api/v1/models")
        router.add_api_route("/{name}/predict", declared, methods=["POST"])
        built.include_router(router)
    else:
        router = APIRouter(prefix="/api/v1/models", route_class=Route)
        router.add_api_route("/{name}/predict", declared, methods=["POST"])
        include(built, [router])
    return built


async def per_call(served: FastAPI, calls: int) -> float:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/models/m/predict",
        "raw_path": b"/api/v1/models/m/predict",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"authorization", b"Bearer hk_x")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    statuses = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for _ in range(500):
        await served(dict(scope), receive, send)
    started = time.perf_counter()
    for _ in range(calls):
        await served(dict(scope), receive, send)
    elapsed = time.perf_counter() - started
    assert set(statuses) == {200}, statuses[:3]
    return elapsed / calls * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    kinds = ["starlette", "fastapi, top level", "fastapi, included router", "service Route"]
    results = {
        kind: min([await per_call(app(kind), args.calls) for _ in range(3)]) for kind in kinds
    }
    reference = results["starlette"]
    print(f"\nper request, in-process, best of 3 x {args.calls:,} calls\n")
    print(f"{'':<28}{'µs':>8}{'+µs vs by hand':>16}")
    for kind, micros in results.items():
        print(f"{kind:<28}{micros:>8.1f}{micros - reference:>16.1f}")


if __name__ == "__main__":
    asyncio.run(main())
