"""Units to variants: sticky assignment without per-unit storage, and predictions routed through
a model's running test. The hot paths: a test this process remembers (`app/adapters/memory.py`)
costs one Redis round trip and no database session; exposures go through the group-committing
log (`app/db/exposure_log.py`).

Rules: docs/reference/specification.md#ab-tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from app.adapters.memory import Memo
from app.core.errors import InvalidTransition
from app.core.metrics import Metrics
from app.core.vocabulary import AbTestStatus
from app.db.exposure_log import ExposureLog
from app.rules import ab_stats
from app.schemas.ab_tests import Assignment
from app.schemas.predictions import AbTestAssignment, Prediction, PredictRequest
from app.services.ab_tests import AbTestService, LiveTest, by_model
from app.services.predictions import PredictionService


class Traffic:
    """`ab_tests` opens a transaction with an `AbTestService` in it, for what the memo does not
    hold (reading a test can stop it, when it is past its end)."""

    def __init__(
        self,
        memo: Memo,
        exposures: ExposureLog,
        predictions: PredictionService,
        metrics: Metrics,
        ab_tests: Callable[[], AbstractAsyncContextManager[AbTestService]],
    ) -> None:
        self.memo = memo
        self.exposures = exposures
        self.predictions = predictions
        self.metrics = metrics
        self.ab_tests = ab_tests

    async def assign(self, test_id: uuid.UUID, unit_id: str) -> Assignment:
        """The unit's variant, from a hash of the test and unit ids; its exposure is recorded."""
        return await self._assign(await self._running(test_id), unit_id)

    async def predict(self, test_id: uuid.UUID, unit_id: str, inputs: Any) -> Prediction:
        """The prediction of the unit's variant."""
        return await self._predict(await self._running(test_id), unit_id, inputs)

    async def predict_for_model(self, name: str, request: PredictRequest) -> Prediction:
        """The model's prediction; through its running test when the request names a unit and
        no version or alias."""
        if request.unit_id is None or request.version is not None or request.alias is not None:
            return await self.predictions.predict(name, request)
        test_id = await self._test_of(name)
        test = await self._running(test_id) if test_id is not None else None
        if test is None or test.status != AbTestStatus.RUNNING or test.over:
            return await self.predictions.predict(name, request)
        return await self._predict(test, request.unit_id, request.inputs)

    async def _assign(self, test: LiveTest, unit_id: str) -> Assignment:
        if test.status != AbTestStatus.RUNNING:
            raise InvalidTransition(f"The test is {test.status}, not running")
        variant = test.variants[
            ab_stats.assign(str(test.id), unit_id, [v.weight for v in test.variants])
        ]
        assert variant.version is not None
        if await self.exposures.record(test.id, unit_id, variant.position):
            self.metrics.child(self.metrics.ab_events, test.name, variant.name, "exposure").inc()
        # Built from checked values: no validation needed.
        return Assignment.model_construct(
            test_id=test.id, unit_id=unit_id, variant=variant.name, version=variant.version
        )

    async def _predict(self, test: LiveTest, unit_id: str, inputs: Any) -> Prediction:
        assignment = await self._assign(test, unit_id)
        result = await self.predictions.predict(
            test.model, PredictRequest(inputs=inputs, version=assignment.version)
        )
        self.metrics.child(
            self.metrics.ab_events, test.name, assignment.variant, "prediction"
        ).inc()
        result.ab_test = AbTestAssignment(id=str(test.id), variant=assignment.variant)
        return result

    async def _running(self, test_id: uuid.UUID) -> LiveTest:
        """The test, remembered while unchanged and running; read again once past its end."""
        recall = await self.memo.read_through(
            (str(test_id),),
            lambda: self._read(test_id),
            keep=lambda test: test.status == AbTestStatus.RUNNING,
        )
        return await self._read(test_id) if recall.value.over else recall.value

    async def _read(self, test_id: uuid.UUID) -> LiveTest:
        async with self.ab_tests() as ab_tests:
            return await ab_tests.live(test_id)

    async def _test_of(self, name: str) -> uuid.UUID | None:
        async def read() -> uuid.UUID | None:
            async with self.ab_tests() as ab_tests:
                return await ab_tests.running_test_of(name)

        return (await self.memo.read_through((by_model(name),), read)).value
