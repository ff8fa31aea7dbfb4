"""MLflow experiments and runs seen through the service, and run comparison."""

from __future__ import annotations

from hokusai._base import Call, Page, body, model, path, query
from hokusai._resource import C, Resource, method, page_of, paged
from hokusai.types import Experiment, Run, RunComparison


def list_experiments(offset: int) -> Call[Page[Experiment]]:
    """Every MLflow experiment."""
    params = query(limit=500, offset=offset)
    return Call("GET", path("experiments"), page_of(Experiment), params=params, repeatable=True)


def runs(offset: int, experiment_id: str) -> Call[Page[Run]]:
    """The runs of an experiment."""
    params = query(limit=500, offset=offset)
    url = path("experiments", experiment_id, "runs")
    return Call("GET", url, page_of(Run), params=params, repeatable=True)


def compare(
    baseline_run_id: str | None,
    candidate_run_id: str,
    *,
    model: str | None = None,
    version: int | None = None,
    metric: str | None = None,
    direction: str | None = None,
) -> Call[RunComparison]:
    """A candidate run against a baseline run, or (`baseline_run_id=None` with `model` and
    `version`) against a registered version."""
    payload = body(
        candidate_run_id=candidate_run_id,
        baseline_run_id=baseline_run_id,
        model=model,
        version=version,
        metric=metric,
        direction=direction,
    )
    url = path("experiments", "compare")
    return Call("POST", url, _comparison, json=payload, repeatable=True)


_comparison = model(RunComparison)


class Experiments(Resource[C]):
    list = paged(list_experiments)
    runs = paged(runs)
    compare = method(compare)
