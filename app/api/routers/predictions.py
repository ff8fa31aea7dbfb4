from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from app.api.auth import API_KEY_SECURITY, authorize
from app.api.deps import ab_test_service, prediction_service, transaction
from app.api.errors import AUTHENTICATED, problems
from app.api.routers import (
    API_PREFIX,
    json_body,
    json_bytes,
    parsed,
    prediction_response,
    served_directly,
)
from app.core.security import Scope
from app.schemas.predictions import Prediction, PredictRequest

router = APIRouter(
    prefix=f"{API_PREFIX}/models", tags=["predictions"], responses=problems(*AUTHENTICATED)
)
# Bodies the routes here read themselves; added to the OpenAPI components by the app.
BODY_SCHEMAS: tuple[type[BaseModel], ...] = (PredictRequest,)


@router.post(
    "/{name}/predict",
    response_model=Prediction,
    responses={
        200: {"headers": {"X-Cache": {"description": "HIT or MISS, for a single row"}}},
        **problems(404, 413, 415, 422),
    },
    openapi_extra={"requestBody": json_body(PredictRequest), "security": API_KEY_SECURITY},
)
async def predict(name: str, request: Request) -> Response:
    """Predict one row (`inputs` is an object) or a batch (a list): with `version`, `alias`, or
    by default `production` (else the latest version); with a `unit_id` while the model runs an
    A/B test, the test's variant for that unit answers. Rows come from the Redis cache when they
    can; `cache` counts hits and misses."""
    # GTM-backend's hot path, served directly (HOT_ROUTES): it reads its own key and body.
    resources, _ = await authorize(request, Scope.PREDICT)
    body = parsed(PredictRequest, await json_bytes(request))
    result = None
    if body.unit_id is not None:
        # Only a request naming a unit may need the database for an A/B test: the common call
        # holds no session and builds no A/B service.
        async with transaction(resources) as session:
            result = await ab_test_service(session, resources).predict_for_model(name, body)
    if result is None:
        result = await prediction_service(resources).predict(name, body)
    return prediction_response(result, single=isinstance(body.inputs, dict))


HOT_ROUTES = [served_directly("/models/{name}/predict", predict)]
