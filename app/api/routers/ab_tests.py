from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.api.auth import PredictorDep, ReaderDep, WriterDep
from app.api.deps import AbTestServiceDep, TrafficDep
from app.api.errors import AUTHENTICATED, problems
from app.api.idempotency import IdempotentDep
from app.api.routers import API_PREFIX, Limit, Offset, prediction_response
from app.api.routing import Route, short
from app.core.vocabulary import AbTestStatus
from app.schemas.ab_tests import (
    AbPredictRequest,
    AbTestCreate,
    AbTestPage,
    AbTestRead,
    AbTestUpdate,
    Assignment,
    AssignRequest,
    OutcomesAccepted,
    OutcomesRequest,
    Promote,
    Results,
)
from app.schemas.common import DEFAULT_LIMIT
from app.schemas.predictions import Prediction

router = APIRouter(
    prefix=f"{API_PREFIX}/ab-tests",
    tags=["ab-tests"],
    responses=problems(*AUTHENTICATED),
    route_class=Route,
)


# The hot operations first: routes are matched in order.


@router.post("/{ab_test_id}/assign", response_model=Assignment, responses=problems(404, 409, 422))
@short
async def assign_unit(
    ab_test_id: uuid.UUID, body: AssignRequest, _: PredictorDep, traffic: TrafficDep
) -> Response:
    """The variant of a unit: deterministic and sticky, from a hash of the test and unit ids."""
    assignment = await traffic.assign(ab_test_id, body.unit_id)
    return Response(assignment.model_dump_json(), media_type="application/json")


@router.post(
    "/{ab_test_id}/predict",
    response_model=Prediction,
    responses=problems(404, 409, 413, 422, 504),
)
@short
async def predict_through_test(
    ab_test_id: uuid.UUID, body: AbPredictRequest, _: PredictorDep, traffic: TrafficDep
) -> Response:
    """Predict with the unit's variant; `ab_test` names the test and the variant."""
    result = await traffic.predict(ab_test_id, body.unit_id, body.inputs)
    return prediction_response(result, single=isinstance(body.inputs, dict))


@router.post(
    "/{ab_test_id}/outcomes",
    response_model=OutcomesAccepted,
    responses=problems(404, 409, 413, 422),
)
async def record_outcomes(
    ab_test_id: uuid.UUID,
    body: OutcomesRequest,
    request: Request,
    principal: PredictorDep,
    ab_tests: AbTestServiceDep,
    idempotent: IdempotentDep,
) -> JSONResponse:
    """Record 1 to 10,000 outcomes; each unit's variant is recomputed from its id. Send an
    `Idempotency-Key` to retry a batch safely: a batch is counted once per key."""

    async def record() -> OutcomesAccepted:
        return await ab_tests.record_outcomes(ab_test_id, body.events)

    # A retry is recognised by its bytes, which is far cheaper than re-encoding 10,000 events.
    return await idempotent(principal, await request.body(), record, status=200)


@router.post("", status_code=201, response_model=AbTestRead, responses=problems(404, 409, 422))
async def create_ab_test(
    body: AbTestCreate, principal: WriterDep, ab_tests: AbTestServiceDep, idempotent: IdempotentDep
) -> JSONResponse:
    """Create a test (a draft) between two or more versions of one model; the first variant is
    the control. Weights sum to 1."""
    return await idempotent(principal, body, lambda: ab_tests.create(body))


@router.get("", response_model=AbTestPage, responses=problems(404, 422))
async def list_ab_tests(
    _: ReaderDep,
    ab_tests: AbTestServiceDep,
    model: str | None = None,
    status: AbTestStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> AbTestPage:
    """A/B tests, newest first, optionally of one model or in one status."""
    items, total = await ab_tests.list_tests(model=model, status=status, limit=limit, offset=offset)
    return AbTestPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{ab_test_id}", response_model=AbTestRead, responses=problems(404, 422))
async def get_ab_test(
    ab_test_id: uuid.UUID, _: ReaderDep, ab_tests: AbTestServiceDep
) -> AbTestRead:
    """One A/B test."""
    return await ab_tests.read(ab_test_id)


@router.patch("/{ab_test_id}", response_model=AbTestRead, responses=problems(404, 409, 422))
async def update_ab_test(
    ab_test_id: uuid.UUID, body: AbTestUpdate, _: WriterDep, ab_tests: AbTestServiceDep
) -> AbTestRead:
    """Change weights or the end time; not while the test runs."""
    return await ab_tests.update(ab_test_id, body)


def _transition(action: Literal["start", "pause", "resume", "stop"], summary: str) -> None:
    async def move(ab_test_id: uuid.UUID, _: WriterDep, ab_tests: AbTestServiceDep) -> AbTestRead:
        return await ab_tests.transition(ab_test_id, action)

    move.__doc__ = summary
    router.add_api_route(
        f"/{{ab_test_id}}/{action}",
        move,
        methods=["POST"],
        response_model=AbTestRead,
        responses=problems(404, 409, 422),
        name=f"{action}_ab_test",
    )


_transition("start", "Start a draft test: aliases become versions; one running test per model.")
_transition("pause", "Pause a running test.")
_transition("resume", "Resume a paused test.")
_transition("stop", "Stop a running or paused test for good.")


@router.get("/{ab_test_id}/results", response_model=Results, responses=problems(404, 422))
async def get_results(ab_test_id: uuid.UUID, _: ReaderDep, ab_tests: AbTestServiceDep) -> Results:
    """Per variant exposures, n, mean, std and the mean's interval; per treatment the lift with
    its interval, p-value and chance to beat control; the sample-ratio check and the verdict."""
    return await ab_tests.results(ab_test_id)


@router.post("/{ab_test_id}/promote", response_model=AbTestRead, responses=problems(404, 409, 422))
async def promote_variant(
    ab_test_id: uuid.UUID, body: Promote, principal: WriterDep, ab_tests: AbTestServiceDep
) -> AbTestRead:
    """Move the model's `production` alias to a variant; 409 `not_significant` unless the
    verdict favours it or `force` is set."""
    return await ab_tests.promote(ab_test_id, body.variant, body.force, principal)
