from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from app.api.deps import ResourcesDep
from app.api.routing import Route
from app.schemas.health import Health, Readiness, Warmup
from app.services.readiness import check_readiness

router = APIRouter(tags=["health"], route_class=Route)


@router.get("/health", response_model=Health)
async def get_health() -> Health:
    """Liveness: the process answers. Touches no dependency and needs no key."""
    return Health()


@router.get(
    "/ready",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "Database or MLflow is down, or no runner can start",
        }
    },
)
async def get_readiness(resources: ResourcesDep) -> JSONResponse:
    """Readiness: pings Postgres, MLflow and Redis, and checks that model runners can start
    (the sandbox's kernel support; the runners' zygote). 503 when the database or MLflow is down
    or no runner can start; Redis down or disabled is `degraded` with 200."""
    readiness = await check_readiness(
        resources.engine,
        resources.registry,
        resources.cache,
        resources.loader.runners,
        resources.metrics,
        resources.settings.ready_timeout_s,
    )
    readiness.warmup = Warmup.model_validate(resources.loader.warmup)
    status = 503 if readiness.status == "unavailable" else 200
    return JSONResponse(readiness.model_dump(exclude_none=True), status_code=status)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def get_metrics(resources: ResourcesDep) -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(
        resources.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
