from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import (
    PredictionServiceDep,
    PredictorDep,
    ResourcesDep,
    ab_test_service,
    transaction,
)
from app.api.errors import AUTHENTICATED, problems
from app.api.routers import API_PREFIX
from app.schemas.predictions import Prediction, PredictRequest

router = APIRouter(
    prefix=f"{API_PREFIX}/models", tags=["predictions"], responses=problems(*AUTHENTICATED)
)


def prediction_response(result: Prediction, single: bool) -> JSONResponse:
    """The prediction, with `X-Cache` when it answers a single row."""
    headers = {"X-Cache": "HIT" if result.cache.hits else "MISS"} if single else {}
    return JSONResponse(result.model_dump(mode="json"), headers=headers)


@router.post(
    "/{name}/predict",
    response_model=Prediction,
    responses={
        200: {"headers": {"X-Cache": {"description": "HIT or MISS, for a single row"}}},
        **problems(404, 413, 422),
    },
)
async def predict(
    name: str,
    body: PredictRequest,
    _: PredictorDep,
    predictions: PredictionServiceDep,
    resources: ResourcesDep,
) -> JSONResponse:
    """Predict one row (`inputs` is an object) or a batch (a list): with `version`, `alias`, or
    by default `production` (else the latest version); with a `unit_id` while the model runs an
    A/B test, the test's variant for that unit answers. Rows come from the Redis cache when they
    can; `cache` counts hits and misses."""
    result = None
    if body.unit_id is not None:
        # Only a request naming a unit may need the database for an A/B test: the common call
        # holds no session and builds no A/B service.
        async with transaction(resources) as session:
            result = await ab_test_service(session, resources).predict_for_model(name, body)
    if result is None:
        result = await predictions.predict(name, body)
    return prediction_response(result, single=isinstance(body.inputs, dict))
