from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import AbTestServiceDep, PredictionServiceDep, PredictorDep
from app.api.errors import AUTHENTICATED, problems
from app.api.routers import API_PREFIX
from app.schemas.predictions import Prediction, PredictRequest

router = APIRouter(
    prefix=f"{API_PREFIX}/models", tags=["predictions"], responses=problems(*AUTHENTICATED)
)


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
    ab_tests: AbTestServiceDep,
) -> JSONResponse:
    """Predict one row (`inputs` is an object) or a batch (a list): with `version`, `alias`, or
    by default `production` (else the latest version); with a `unit_id` while the model runs an
    A/B test, the test's variant for that unit answers. Rows come from the Redis cache when they
    can; `cache` counts hits and misses."""
    routed = await ab_tests.predict_for_model(name, body)
    result, hit = routed if routed is not None else await predictions.predict(name, body)
    headers = {"X-Cache": "HIT" if hit else "MISS"} if isinstance(body.inputs, dict) else {}
    return JSONResponse(result.model_dump(mode="json"), headers=headers)
