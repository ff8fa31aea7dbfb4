from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from app.api.auth import ReaderDep
from app.api.deps import LineageServiceDep, MlModelServiceDep
from app.api.errors import AUTHENTICATED, problems
from app.api.routers import API_PREFIX
from app.api.routing import Route
from app.schemas.common import MAX_INTEGER
from app.schemas.lineage import Lineage, LineageDirection, LineageFormat
from app.services.lineage import dot, mermaid

router = APIRouter(
    prefix=f"{API_PREFIX}/models",
    tags=["lineage"],
    responses=problems(*AUTHENTICATED),
    route_class=Route,
)


@router.get(
    "/{name}/lineage",
    response_model=Lineage,
    responses={
        200: {
            "content": {
                "application/json": {},
                "text/vnd.mermaid": {"schema": {"type": "string"}},
                "text/vnd.graphviz": {"schema": {"type": "string"}},
            },
            "description": "The graph as JSON, Mermaid or Graphviz DOT (`format`)",
        },
        **problems(404, 422),
    },
)
async def get_lineage(
    name: str,
    _: ReaderDep,
    ml_models: MlModelServiceDep,
    lineage: LineageServiceDep,
    version: Annotated[
        int | None, Query(ge=1, le=MAX_INTEGER, description="Default: the whole graph")
    ] = None,
    direction: LineageDirection = LineageDirection.BOTH,
    depth: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    format: LineageFormat = LineageFormat.JSON,  # the API's parameter name
) -> Response:
    """The lineage graph of a model, or around one version (ancestors, descendants or both, up to
    `depth` hops), with each edge's gain, DeltaOne decision, contributors and attestation, and
    the cumulative gain from the root baseline."""
    model = await ml_models.get_model(name)
    found = await ml_models.get_version(model, version) if version is not None else None
    graph = await lineage.graph(model, found, direction, depth)
    if format == LineageFormat.MERMAID:
        return PlainTextResponse(
            mermaid(Lineage.model_validate(graph)), media_type="text/vnd.mermaid"
        )
    if format == LineageFormat.DOT:
        return PlainTextResponse(dot(Lineage.model_validate(graph)), media_type="text/vnd.graphviz")
    return JSONResponse(graph)
