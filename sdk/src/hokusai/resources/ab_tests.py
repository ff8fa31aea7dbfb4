"""A/B tests: create, run, route units, record outcomes, read results, promote."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hokusai._base import Call, Page, body, creating, path, query
from hokusai._base import model as as_model
from hokusai._resource import C, Resource, method, page_of, paged
from hokusai.types import AbResults, AbTest, Assignment, OutcomesAccepted, Prediction


def create(
    name: str,
    model: str,
    variants: list[dict[str, Any]],
    metric: dict[str, Any],
    *,
    unit: str | None = None,
    minimum_sample_size: int | None = None,
    confidence_level: float | None = None,
    ends_at: datetime | None = None,
    webhook_url: str | None = None,
    idempotency_key: str | None = None,
) -> Call[AbTest]:
    """A draft test between versions (or aliases) of one model; the first variant is the control."""
    payload = body(
        name=name,
        model=model,
        variants=variants,
        metric=metric,
        unit=unit,
        minimum_sample_size=minimum_sample_size,
        confidence_level=confidence_level,
        ends_at=ends_at.isoformat() if ends_at else None,
        webhook_url=webhook_url,
    )
    return creating("POST", path("ab-tests"), as_model(AbTest), idempotency_key, json=payload)


def get(test_id: str) -> Call[AbTest]:
    """One test."""
    return Call("GET", path("ab-tests", test_id), as_model(AbTest), repeatable=True)


def list_tests(
    offset: int, *, model: str | None = None, status: str | None = None
) -> Call[Page[AbTest]]:
    """Tests, newest first, optionally of one model or in one status."""
    params = query(model=model, status=status, limit=500, offset=offset)
    return Call("GET", path("ab-tests"), page_of(AbTest), params=params, repeatable=True)


def update(
    test_id: str, *, weights: dict[str, float] | None = None, ends_at: datetime | None = None
) -> Call[AbTest]:
    """New weights or end time (not while running)."""
    payload = body(weights=weights, ends_at=ends_at.isoformat() if ends_at else None)
    return Call("PATCH", path("ab-tests", test_id), as_model(AbTest), json=payload)


def start(test_id: str) -> Call[AbTest]:
    """Start a draft test: aliases become versions; one running test per model."""
    return Call("POST", path("ab-tests", test_id, "start"), as_model(AbTest))


def pause(test_id: str) -> Call[AbTest]:
    """Pause a running test."""
    return Call("POST", path("ab-tests", test_id, "pause"), as_model(AbTest))


def resume(test_id: str) -> Call[AbTest]:
    """Resume a paused test."""
    return Call("POST", path("ab-tests", test_id, "resume"), as_model(AbTest))


def stop(test_id: str) -> Call[AbTest]:
    """Stop a running or paused test for good."""
    return Call("POST", path("ab-tests", test_id, "stop"), as_model(AbTest))


def assign(test_id: str, unit_id: str) -> Call[Assignment]:
    """The unit's variant (deterministic and sticky); counts its first exposure."""
    url = path("ab-tests", test_id, "assign")
    return Call("POST", url, as_model(Assignment), json={"unit_id": unit_id}, repeatable=True)


def predict(
    test_id: str, unit_id: str, inputs: dict[str, Any] | list[dict[str, Any]]
) -> Call[Prediction]:
    """Predict with the unit's variant."""
    url = path("ab-tests", test_id, "predict")
    return Call(
        "POST",
        url,
        as_model(Prediction),
        json={"unit_id": unit_id, "inputs": inputs},
        repeatable=True,
    )


def record_outcomes(
    test_id: str, events: list[dict[str, Any]], *, idempotency_key: str | None = None
) -> Call[OutcomesAccepted]:
    """Record outcomes (`{unit_id, value}`); only units the test exposed count. Returns how many
    were `accepted` and how many `ignored` (units never exposed, or already counted)."""
    url = path("ab-tests", test_id, "outcomes")
    return creating(
        "POST", url, as_model(OutcomesAccepted), idempotency_key, json={"events": events}
    )


def results(test_id: str) -> Call[AbResults]:
    """Per variant statistics, comparisons against the control, the SRM check and the verdict."""
    return Call("GET", path("ab-tests", test_id, "results"), as_model(AbResults), repeatable=True)


def promote(test_id: str, variant: str, *, force: bool = False) -> Call[AbTest]:
    """Move `production` to the variant's version and stop the test."""
    url = path("ab-tests", test_id, "promote")
    return Call("POST", url, as_model(AbTest), json={"variant": variant, "force": force})


class AbTests(Resource[C]):
    create = method(create)
    get = method(get)
    list = paged(list_tests)
    update = method(update)
    start = method(start)
    pause = method(pause)
    resume = method(resume)
    stop = method(stop)
    assign = method(assign)
    predict = method(predict)
    record_outcomes = method(record_outcomes)
    results = method(results)
    promote = method(promote)
