"""What the routers share: the path prefix, the page parameters, the prediction response."""

from typing import Annotated

import orjson
from fastapi import Query, Response

from app.schemas.common import MAX_BIGINT, MAX_LIMIT
from app.schemas.predictions import Prediction

API_PREFIX = "/api/v1"

# Page parameters of every list endpoint: `?limit=` (default 50, max 500) `&offset=`.
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=MAX_BIGINT)]


def prediction_response(result: Prediction, single: bool) -> Response:
    """A prediction (of the model or through an A/B test), with `X-Cache` when it answers
    a single row. Written by orjson (a tenth of pydantic's cost for the few fields of an
    answer; `tests/api/test_predictions.py` checks both write the same), or by pydantic for
    what orjson refuses (an integer past 64 bits)."""
    headers = {"X-Cache": "HIT" if result.cache.hits else "MISS"} if single else None
    try:  # each model as its fields, in order, as pydantic writes them
        body = orjson.dumps(result, default=vars)
    except orjson.JSONEncodeError:
        body = result.model_dump_json().encode()
    return Response(body, headers=headers, media_type="application/json")
