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
            "description": "This replica cannot serve predictions: no model runner can start, "
            "or neither the database nor its recently checked keys can authenticate",
        }
    },
)
async def get_readiness(resources: ResourcesDep) -> JSONResponse:
    """Readiness of this replica to serve predictions, its main job: pings Postgres, MLflow and
    Redis, and checks that model runners can start (the sandbox's kernel support; the runners'
    zygote). 503 `unavailable` only when no runner can start, or the database is down and no
    recently checked key can be served; any other dependency down (MLflow, Redis, or the
    database while recent keys are served) is `degraded` with 200."""
    readiness = await check_readiness(
        resources.engine,
        resources.registry,
        resources.cache,
        resources.loader.runners,
        resources.principals,
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
