"""A/B tests: lifecycle, outcomes as sufficient statistics, results, promotion, webhooks.
(Routing units: `app/services/traffic.py`, which reads the `LiveTest` built here.)

Rules: docs/reference/specification.md#ab-tests."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from app.adapters.memory import AB_TEST, changed
from app.adapters.webhooks import Refused, Webhooks
from app.core.errors import (
    AbTestConflict,
    AbTestNotFound,
    InvalidTransition,
    ModelNotFound,
    NotSignificant,
    ValidationFailed,
    VersionArchived,
    VersionNotFound,
)
from app.core.metrics import Metrics
from app.core.security import Principal
from app.core.vocabulary import PRODUCTION, AbTestStatus, MetricDirection, MetricKind, Verdict
from app.db.base import utcnow
from app.db.models import AbTest, AbVariant, MlModel
from app.db.repositories.ab_tests import AbTestRepository
from app.db.repositories.ml_models import AliasRepository, MlModelRepository, VersionRepository
from app.db.session import after_commit
from app.rules import ab_stats
from app.schemas.ab_tests import (
    AbTestCreate,
    AbTestRead,
    AbTestUpdate,
    ComparisonResult,
    MetricSpec,
    Outcome,
    OutcomesAccepted,
    Results,
    Srm,
    VariantRead,
    VariantResult,
)
from app.services.aliases import AliasService
from app.services.ml_models import live_model


@dataclass(frozen=True)
class LiveVariant:
    position: int
    name: str
    version: int | None
    weight: float


@dataclass(frozen=True)
class LiveTest:
    """What routing a unit needs of a test, as a process remembers it (by test id)."""

    id: uuid.UUID
    name: str
    model: str
    status: AbTestStatus
    ends_at: datetime | None
    variants: tuple[LiveVariant, ...]

    @property
    def over(self) -> bool:
        return self.ends_at is not None and self.ends_at <= utcnow()


def by_model(name: str) -> str:
    """The memo source of a model's running test, among the A/B test sources: every status
    change of any of the model's tests replaces its token."""
    return f"model:{name}"


TRANSITIONS = {
    "start": ({AbTestStatus.DRAFT}, AbTestStatus.RUNNING),
    "pause": ({AbTestStatus.RUNNING}, AbTestStatus.PAUSED),
    "resume": ({AbTestStatus.PAUSED}, AbTestStatus.RUNNING),
    "stop": ({AbTestStatus.RUNNING, AbTestStatus.PAUSED}, AbTestStatus.STOPPED),
}


class AbTestService:
    def __init__(
        self,
        session: AsyncSession,
        aliases: AliasService,
        webhooks: Webhooks,
        metrics: Metrics,
    ) -> None:
        self.session = session
        self.tests = AbTestRepository(session)
        self.models = MlModelRepository(session)
        self.versions = VersionRepository(session)
        self.aliases = AliasRepository(session)
        self.alias_service = aliases
        self.webhooks = webhooks
        self.metrics = metrics

    async def create(self, request: AbTestCreate) -> AbTestRead:
        if request.webhook_url is not None:
            try:
                self.webhooks.check(str(request.webhook_url))
            except Refused as exc:
                raise ValidationFailed.at(["body", "webhook_url"], str(exc)) from exc
        model = live_model(await self._model(request.model))
        await self._live_versions(model, [v.version for v in request.variants])
        now = utcnow()
        test = AbTest(
            id=uuid.uuid4(),
            name=request.name,
            model_id=model.id,
            status=AbTestStatus.DRAFT,
            unit=request.unit,
            metric_name=request.metric.name,
            metric_kind=request.metric.kind,
            metric_direction=request.metric.direction,
            minimum_sample_size=request.minimum_sample_size,
            confidence_level=request.confidence_level,
            ends_at=request.ends_at,
            webhook_url=str(request.webhook_url) if request.webhook_url else None,
            created_at=now,
            updated_at=now,
        )
        variants = [
            AbVariant(
                test_id=test.id,
                position=index,
                name=v.name,
                version=v.version,
                alias=v.alias,
                weight=v.weight,
                exposures=0,
                n=0,
                total=0.0,
                total_sq=0.0,
            )
            for index, v in enumerate(request.variants)
        ]
        await self.tests.add(test, variants)
        return self._read(test, model.name, variants)

    async def get(
        self, test_id: uuid.UUID, *, for_update: bool = False
    ) -> tuple[AbTest, MlModel, list[AbVariant]]:
        test, variants = await self._test(test_id, for_update=for_update)
        model = await self.models.get_by_id(test.model_id)
        assert model is not None
        return test, model, variants

    async def _test(
        self, test_id: uuid.UUID, *, for_update: bool = False
    ) -> tuple[AbTest, list[AbVariant]]:
        test = await self.tests.get(test_id, for_update=for_update)
        if test is None:
            raise AbTestNotFound(f"No A/B test {test_id}")
        variants = await self.tests.variants(test.id)
        await self._expire(test)
        return test, variants

    async def _expire(self, test: AbTest) -> None:
        """A test past its end time stops by itself (noticed on the first access after it)."""
        if (
            test.ends_at is not None
            and test.ends_at <= utcnow()
            and test.status in (AbTestStatus.RUNNING, AbTestStatus.PAUSED)
        ):
            await self._move(test, AbTestStatus.STOPPED, reason="ended")

    async def read(self, test_id: uuid.UUID) -> AbTestRead:
        test, model, variants = await self.get(test_id)
        return self._read(test, model.name, variants)

    async def list_tests(
        self, *, model: str | None, status: AbTestStatus | None, limit: int, offset: int
    ) -> tuple[list[AbTestRead], int]:
        model_id = (await self._model(model)).id if model is not None else None
        tests, total = await self.tests.page(
            model_id=model_id, status=status, limit=limit, offset=offset
        )
        for test in tests:
            await self._expire(test)
        variants = await self.tests.variants_of([t.id for t in tests])
        names = await self.models.names([t.model_id for t in tests])
        return [self._read(t, names[t.model_id], variants[t.id]) for t in tests], total

    async def update(self, test_id: uuid.UUID, request: AbTestUpdate) -> AbTestRead:
        test, model, variants = await self.get(test_id, for_update=True)
        if test.status == AbTestStatus.RUNNING:
            raise InvalidTransition("Pause the test before changing it")
        if test.status == AbTestStatus.STOPPED:
            raise InvalidTransition("A stopped test does not change")
        if request.weights is not None:
            if set(request.weights) != {v.name for v in variants}:
                raise ValidationFailed.at(["body", "weights"], "name every variant once")
            for variant in variants:
                variant.weight = request.weights[variant.name]
        if "ends_at" in request.model_fields_set:
            test.ends_at = request.ends_at
        test.updated_at = utcnow()
        await self.tests.save()
        changed(self.session, AB_TEST, str(test.id))
        return self._read(test, model.name, variants)

    async def transition(self, test_id: uuid.UUID, action: str) -> AbTestRead:
        test, model, variants = await self.get(test_id, for_update=True)
        allowed, target = TRANSITIONS[action]
        if test.status not in allowed:
            raise InvalidTransition(f"Cannot {action} a {test.status} test")
        if target == AbTestStatus.RUNNING:
            running = await self.tests.running_for_model(model.id)
            if running is not None and running.id != test.id:
                raise AbTestConflict(f"Model {model.name} already runs A/B test {running.id}")
            live_model(model)
            if action == "start":
                await self._resolve_aliases(model, variants)
            await self._live_versions(model, [v.version for v in variants])
        await self._move(test, target, reason=action)
        return self._read(test, model.name, variants)

    async def _live_versions(self, model: MlModel, numbers: list[int | None]) -> None:
        """Each version named exists and is not archived."""
        for number in numbers:
            if number is None:
                continue
            version = await self.versions.get(model.id, number)
            if version is None:
                raise VersionNotFound(f"Model {model.name} has no version {number}")
            if version.archived_at is not None:
                raise VersionArchived(f"Version {number} of {model.name} is archived")

    async def _resolve_aliases(self, model: MlModel, variants: list[AbVariant]) -> None:
        """Variants named by alias get the alias's version when the test starts."""
        current = await self.aliases.current(model.id)
        for variant in variants:
            if variant.version is None:
                assert variant.alias is not None
                if variant.alias not in current:
                    raise VersionNotFound(f"Model {model.name} has no alias {variant.alias}")
                variant.version = current[variant.alias]

    async def _move(self, test: AbTest, status: AbTestStatus, reason: str) -> None:
        model = await self.models.get_by_id(test.model_id)  # usually in the session already
        assert model is not None
        now = utcnow()
        previous = test.status
        test.status = status
        test.updated_at = now
        if status == AbTestStatus.RUNNING and test.started_at is None:
            test.started_at = now
        if status == AbTestStatus.STOPPED:
            test.stopped_at = now
        await self.tests.save()
        changed(self.session, AB_TEST, str(test.id))
        changed(self.session, AB_TEST, by_model(model.name))
        self._announce(
            test,
            {
                "type": "ab_test.status_changed",
                "test_id": str(test.id),
                "name": test.name,
                "from": previous,
                "to": status.value,
                "reason": reason,
                "at": now.isoformat(),
            },
        )

    # What routing units needs (`app/services/traffic.py`)

    async def live(self, test_id: uuid.UUID) -> LiveTest:
        """The test as routing needs it, read from Postgres (and stopped if past its end)."""
        test, model, variants = await self.get(test_id)
        return LiveTest(
            id=test.id,
            name=test.name,
            model=model.name,
            status=test.status,
            ends_at=test.ends_at,
            variants=tuple(LiveVariant(v.position, v.name, v.version, v.weight) for v in variants),
        )

    async def running_test_of(self, name: str) -> uuid.UUID | None:
        """The id of the test the model runs, if any."""
        running = await self.tests.running_for_model((await self._model(name)).id)
        return running.id if running is not None else None

    async def record_outcomes(self, test_id: uuid.UUID, events: list[Outcome]) -> OutcomesAccepted:
        """Events of a unit go to the variant its id hashes to, whatever the client thinks; only
        units exposed to the test count (the others are `ignored`)."""
        test, variants = await self._test(test_id)
        if test.status == AbTestStatus.DRAFT:
            raise InvalidTransition("The test has not started")
        values = np.fromiter((event["value"] for event in events), np.float64, len(events))
        if test.metric_kind == MetricKind.BINARY:
            wrong = np.flatnonzero((values != 0) & (values != 1))
            if wrong.size:
                where: list[str | int] = ["body", "events", int(wrong[0]), "value"]
                raise ValidationFailed.at(where, "a binary outcome is 0 or 1")
        exposed = await self.tests.exposed(test.id, list({event["unit_id"] for event in events}))
        counted = np.fromiter((event["unit_id"] in exposed for event in events), bool, len(events))
        values = values[counted]
        positions = ab_stats.assign_all(
            str(test.id),
            (event["unit_id"] for event in events if event["unit_id"] in exposed),
            [v.weight for v in variants],
        )
        # Per variant: count, sum and sum of squares, summed in event order as a loop would.
        counts = np.bincount(positions, minlength=len(variants))
        totals = np.bincount(positions, weights=values, minlength=len(variants))
        squares = np.bincount(positions, weights=values * values, minlength=len(variants))
        added = {
            position: (int(counts[position]), float(totals[position]), float(squares[position]))
            for position in np.flatnonzero(counts).tolist()
        }
        if added:
            await self.tests.add_outcomes(test.id, added)
            for position, (n, _, _) in added.items():
                self.metrics.ab_events.labels(test.name, variants[position].name, "outcome").inc(n)
            await self._notice_verdict(test)
        return OutcomesAccepted(accepted=len(values), ignored=len(events) - len(values))

    # Results and promotion

    async def results(self, test_id: uuid.UUID) -> Results:
        test, variants = await self._test(test_id)  # results name no model: one read fewer
        result = _results(test, variants)
        await self._notice_verdict(test, result)
        return result

    async def _notice_verdict(self, test: AbTest, result: Results | None = None) -> None:
        """A verdict that moved is announced once: of two requests that see it move together,
        only the one whose conditional write lands announces it. Only a webhook listens for it,
        so a test without one computes and records nothing here (`results` answers anyway)."""
        if test.webhook_url is None:
            return
        result = result or _results(test, await self.tests.variants(test.id))
        previous = test.last_verdict
        if result.verdict != previous and await self.tests.move_verdict(
            test, previous, result.verdict
        ):
            self._announce(
                test,
                {
                    "type": "ab_test.verdict_changed",
                    "test_id": str(test.id),
                    "name": test.name,
                    "from": previous,
                    "to": result.verdict,
                    "at": utcnow().isoformat(),
                },
            )

    def _announce(self, test: AbTest, event: dict[str, Any]) -> None:
        """Send `event` to the test's webhook once this request's work is committed."""
        if test.webhook_url is not None:
            url = test.webhook_url
            after_commit(self.session, lambda: self.webhooks.send(url, event))

    async def promote(
        self, test_id: uuid.UUID, variant_name: str, force: bool, actor: Principal
    ) -> AbTestRead:
        """Move the model's production alias to a variant (recorded in the alias history)."""
        test, model, variants = await self.get(test_id, for_update=True)
        if test.status not in (AbTestStatus.RUNNING, AbTestStatus.STOPPED, AbTestStatus.PAUSED):
            raise InvalidTransition("Only a started test can be promoted")
        chosen = next((v for v in variants if v.name == variant_name), None)
        if chosen is None or chosen.version is None:
            raise ValidationFailed.at(["body", "variant"], f"no variant {variant_name!r}")
        result = _results(test, variants)
        favoured = (
            result.verdict == Verdict.CONTROL_BETTER
            if chosen.position == 0
            else any(
                c.variant == chosen.name and c.significant and _better(test, c)
                for c in result.comparisons
            )
        )
        if not favoured and not force:
            raise NotSignificant(
                f"The results ({result.verdict}) do not favour {variant_name}; "
                "use force to promote anyway"
            )
        await self.alias_service.set_alias(
            model.name,
            PRODUCTION,
            chosen.version,
            f"A/B test {test.name}: promoted {chosen.name}",
            actor,
        )
        test.winner = chosen.name
        if test.status != AbTestStatus.STOPPED:
            await self._move(test, AbTestStatus.STOPPED, reason="promoted")
        await self.tests.save()
        return self._read(test, model.name, variants)

    async def _model(self, name: str) -> MlModel:
        model = await self.models.get_by_name(name)
        if model is None:
            raise ModelNotFound(f"No model named {name}")
        return model

    @staticmethod
    def _read(test: AbTest, model: str, variants: list[AbVariant]) -> AbTestRead:
        return AbTestRead(
            id=test.id,
            name=test.name,
            model=model,
            status=test.status,
            variants=[VariantRead.model_validate(variant) for variant in variants],
            unit=test.unit,
            metric=_metric(test),
            minimum_sample_size=test.minimum_sample_size,
            confidence_level=test.confidence_level,
            ends_at=test.ends_at,
            webhook_url=test.webhook_url,
            created_at=test.created_at,
            started_at=test.started_at,
            stopped_at=test.stopped_at,
            winner=test.winner,
        )


def _metric(test: AbTest) -> MetricSpec:
    return MetricSpec(
        name=test.metric_name,
        kind=test.metric_kind,
        direction=test.metric_direction,
    )


def _better(test: AbTest, comparison: ComparisonResult) -> bool:
    lift = comparison.absolute_lift or 0.0
    return lift > 0 if test.metric_direction == MetricDirection.HIGHER_IS_BETTER else lift < 0


def _variant_result(test: AbTest, variant: AbVariant, sample: ab_stats.Sample) -> VariantResult:
    ci_low, ci_high = ab_stats.interval(sample, test.metric_kind, test.confidence_level)
    return VariantResult(
        name=variant.name,
        version=variant.version,
        weight=variant.weight,
        exposures=variant.exposures,
        n=sample.n,
        mean=sample.mean,
        std=sample.std,
        ci_low=ci_low,
        ci_high=ci_high,
    )


def _results(test: AbTest, variants: list[AbVariant]) -> Results:
    samples = [ab_stats.Sample(v.n, v.total, v.total_sq) for v in variants]
    higher = test.metric_direction == MetricDirection.HIGHER_IS_BETTER
    comparisons = [
        ab_stats.compare(samples[0], sample, test.metric_kind, higher, test.confidence_level)
        for sample in samples[1:]
    ]
    p_value, flagged = ab_stats.sample_ratio_mismatch(
        [v.exposures for v in variants], [v.weight for v in variants]
    )
    return Results(
        test_id=test.id,
        status=test.status,
        metric=_metric(test),
        verdict=ab_stats.verdict(samples, comparisons, test.minimum_sample_size),
        srm=Srm(p_value=p_value, flagged=flagged),
        variants=[_variant_result(test, v, s) for v, s in zip(variants, samples, strict=True)],
        comparisons=[
            ComparisonResult.model_validate(
                {**asdict(c), "variant": v.name, "control": variants[0].name}
            )
            for v, c in zip(variants[1:], comparisons, strict=True)
        ],
    )
