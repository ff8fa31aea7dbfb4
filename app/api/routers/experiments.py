from __future__ import annotations

from fastapi import APIRouter

from app.api.auth import ReaderDep
from app.api.deps import ExperimentServiceDep, MlModelServiceDep
from app.api.errors import AUTHENTICATED, problems
from app.api.routers import API_PREFIX, Limit, Offset
from app.api.routing import Route
from app.schemas.common import DEFAULT_LIMIT
from app.schemas.experiments import (
    ExperimentPage,
    RunCompare,
    RunComparison,
    RunPage,
)

router = APIRouter(
    prefix=f"{API_PREFIX}/experiments",
    tags=["experiments"],
    responses=problems(*AUTHENTICATED),
    route_class=Route,
)


@router.get("", response_model=ExperimentPage, responses=problems(422))
async def list_experiments(
    _: ReaderDep,
    experiments: ExperimentServiceDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> ExperimentPage:
    """The MLflow experiments, newest first (one per registered model, and any others)."""
    items, total = await experiments.list_experiments(limit=limit, offset=offset)
    return ExperimentPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{experiment_id}/runs", response_model=RunPage, responses=problems(404, 422))
async def list_runs(
    experiment_id: str,
    _: ReaderDep,
    experiments: ExperimentServiceDep,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> RunPage:
    """The runs of one experiment, newest first, with their metrics, params and tags."""
    items, total = await experiments.list_runs(experiment_id, limit=limit, offset=offset)
    return RunPage(items=items, total=total, limit=limit, offset=offset)


@router.post("/compare", response_model=RunComparison, responses=problems(404, 422))
async def compare_runs(
    body: RunCompare,
    _: ReaderDep,
    experiments: ExperimentServiceDep,
    ml_models: MlModelServiceDep,
) -> RunComparison:
    """Compare a candidate run against a baseline run or a registered version, with the same
    delta rules as registration."""
    return await experiments.compare(body, ml_models)
