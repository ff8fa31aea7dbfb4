from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.auth import PredictorDep
from app.api.deps import TrafficDep
from app.api.errors import AUTHENTICATED, problems
from app.api.routers import API_PREFIX, prediction_response
from app.api.routing import Route, short
from app.schemas.predictions import Prediction, PredictRequest

router = APIRouter(
    prefix=f"{API_PREFIX}/models",
    tags=["predictions"],
    responses=problems(*AUTHENTICATED),
    route_class=Route,
)


@router.post(
    "/{name}/predict",
    response_model=Prediction,
    responses={
        200: {"headers": {"X-Cache": {"description": "HIT or MISS, for a single row"}}},
        **problems(404, 409, 413, 422, 504),  # 409: the model or the version is archived
    },
)
@short
async def predict(
    name: str, body: PredictRequest, _: PredictorDep, traffic: TrafficDep
) -> Response:
    """Predict one row (`inputs` is an object) or a batch (a list): with `version`, `alias`, or
    by default `production` (else the latest version); with a `unit_id` while the model runs an
    A/B test, the test's variant for that unit answers. Rows come from the Redis cache when they
    can; `cache` counts hits and misses."""
    result = await traffic.predict_for_model(name, body)
    return prediction_response(result, single=isinstance(body.inputs, dict))
