from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.routing import Route

from app.core.errors import UnsupportedMediaType
from app.schemas.common import MAX_BIGINT, MAX_LIMIT
from app.schemas.predictions import Prediction

API_PREFIX = "/api/v1"

# Page parameters of every list endpoint: `?limit=` (default 50, max 500) `&offset=`.
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=MAX_BIGINT)]


M = TypeVar("M", bound=BaseModel)


def parsed(model: type[M], raw: str | bytes, *loc: str) -> M:
    """A body a route reads itself, validated as FastAPI would (the same 422 on errors). Its
    model goes in the router's `BODY_SCHEMAS`, which the app adds to the OpenAPI components."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *loc, *error["loc"])} for error in exc.errors()]
        ) from exc


async def json_bytes(request: Request) -> bytes:
    """The body of a route that reads its JSON itself, once its media type says JSON."""
    media_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("Send the body as application/json")
    return await request.body()


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI `requestBody` of a route that reads `model` itself."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def prediction_response(result: Prediction, single: bool) -> Response:
    """A prediction (of the model or through an A/B test), with `X-Cache` when it answers
    a single row."""
    headers = {"X-Cache": "HIT" if result.cache.hits else "MISS"} if single else None
    return Response(result.model_dump_json(), headers=headers, media_type="application/json")


def served_directly(path: str, endpoint: Callable[..., Awaitable[Response]]) -> Route:
    """A plain Starlette route for a hot FastAPI operation, which the app places ahead of all
    others. FastAPI's per-request machinery (matching through included routers, solving
    dependencies, exit stacks) costs more than a cached prediction; this route calls the same
    endpoint, with the same middleware and error handlers, while the FastAPI route documents
    it. The endpoint takes `request` and string path parameters, and checks the key itself."""

    async def serve(request: Request) -> Response:
        request.scope["route"] = route  # for the metrics' route label, as FastAPI's routes do
        return await endpoint(request=request, **request.path_params)

    route = Route(f"{API_PREFIX}{path}", serve, methods=["POST"], name=endpoint.__name__)
    return route
