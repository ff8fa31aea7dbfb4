"""What the service is built from, wired once, for the API, the command line and the workers alike.

`Resources` is everything app-wide (connections, clients, the model runners, what a replica
remembers), opened and closed by `open_resources`: the API's lifespan and every command go
through it. `Services` is the services of one unit of work, each built on first use and once:
a request, a command or a worker asks it for `services.ml_models`, never builds a service by hand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.adapters.cache import Cache
from app.adapters.loader import ModelLoader
from app.adapters.memory import AB_TEST, MODEL, Memory
from app.adapters.registry import Registry
from app.adapters.runners import Runners
from app.adapters.webhooks import Webhooks
from app.core.breaker import Breaker
from app.core.config import Settings
from app.core.metrics import Metrics
from app.core.security import PrincipalCache
from app.db.exposure_log import ExposureLog
from app.db.session import create_engine, create_sessionmaker
from app.db.unit_of_work import UnitOfWork
from app.services.ab_tests import AbTestService
from app.services.aliases import AliasService
from app.services.api_keys import ApiKeyService
from app.services.attestations import AttestationService
from app.services.benchmarks import BenchmarkService
from app.services.contributors import ContributorService
from app.services.evaluation import EvaluationService
from app.services.experiments import ExperimentService
from app.services.lineage import LineageService
from app.services.ml_models import MlModelService
from app.services.predictions import PredictionService
from app.services.registration import RegistrationService
from app.services.signing import Signer
from app.services.traffic import Traffic


@dataclass
class Resources:
    """Everything app-wide, built once by `open_resources` and closed when it ends."""

    settings: Settings
    metrics: Metrics
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: Cache
    registry: Registry  # its client is built by `await registry.start()`, by those that use it
    principals: PrincipalCache
    # Open after a query got no answer (a hung server): nothing waits on the database again
    # until its cooldown ends; key lookups serve recent keys, other calls answer 503 at once.
    database: Breaker
    unit_of_work: UnitOfWork
    memory: Memory
    exposures: ExposureLog
    loader: ModelLoader
    webhooks: Webhooks

    @cached_property
    def signer(self) -> Signer:
        """Read (or, in development, made) on first use: a command that signs nothing never
        touches the signing key; the API builds it at start-up, so a bad key stops it there."""
        return Signer.from_settings(self.settings)

    # The services that hold no session are app-wide: built once, shared by every request.

    @cached_property
    def predictions(self) -> PredictionService:
        return PredictionService(
            self.engine,
            self.cache,
            self.memory[MODEL],
            self.loader,
            self.settings,
            self.metrics,
        )

    @cached_property
    def traffic(self) -> Traffic:
        """Opens a unit of work of its own only for what its memo lacks."""
        return Traffic(
            self.memory[AB_TEST],
            self.exposures,
            self.predictions,
            self.metrics,
            self._ab_tests_in_a_unit_of_work,
        )

    @cached_property
    def experiments(self) -> ExperimentService:
        return ExperimentService(self.registry)

    @asynccontextmanager
    async def _ab_tests_in_a_unit_of_work(self) -> AsyncIterator[AbTestService]:
        async with self.unit_of_work() as session:
            yield Services(session, self).ab_tests


@asynccontextmanager
async def open_resources(settings: Settings, metrics: Metrics) -> AsyncIterator[Resources]:
    """Build everything app-wide; close it all, in reverse, when the block ends."""
    engine = create_engine(settings)
    registry = Registry(settings)
    sessionmaker = create_sessionmaker(engine)
    cache = Cache.from_settings(settings, metrics)
    memory = Memory(cache, settings.resolution_cache_ttl_s)
    database = Breaker(1, settings.retry_after_s)
    resources = Resources(
        settings=settings,
        metrics=metrics,
        engine=engine,
        sessionmaker=sessionmaker,
        cache=cache,
        registry=registry,
        principals=PrincipalCache(settings.auth_cache_ttl_s, settings.auth_stale_if_error_s),
        database=database,
        unit_of_work=UnitOfWork(
            sessionmaker,
            announce=memory.announce,
            breaker=database,
            retry_after_s=settings.retry_after_s,
        ),
        memory=memory,
        exposures=ExposureLog(create_engine(settings, pool_size=1)),
        loader=ModelLoader(registry, Runners(settings, metrics), settings, metrics),
        webhooks=Webhooks(
            settings.webhook_secret.get_secret_value() if settings.webhook_secret else None,
            metrics,
            allow_private_networks=settings.webhook_allow_private_networks,
        ),
    )
    try:
        yield resources
    finally:
        await resources.loader.close()
        await resources.webhooks.close()
        resources.registry.close()
        await resources.cache.close()
        await resources.exposures.close()
        await engine.dispose()


class Services:
    """The services of one unit of work (one session), each built on first use and once."""

    def __init__(self, session: AsyncSession, resources: Resources) -> None:
        self.session = session
        self.resources = resources

    @cached_property
    def api_keys(self) -> ApiKeyService:
        return ApiKeyService(self.session, self.resources.principals)

    @cached_property
    def benchmarks(self) -> BenchmarkService:
        return BenchmarkService(self.session, self.resources.registry, self.resources.settings)

    @cached_property
    def ml_models(self) -> MlModelService:
        return MlModelService(self.session, self.resources.registry)

    @cached_property
    def aliases(self) -> AliasService:
        return AliasService(self.session, self.resources.registry, self.ml_models)

    @cached_property
    def attestations(self) -> AttestationService:
        return AttestationService(self.session, self.resources.signer)

    @cached_property
    def evaluation(self) -> EvaluationService:
        r = self.resources
        return EvaluationService(r.loader.runners, r.registry, self.benchmarks, r.settings)

    @cached_property
    def registration(self) -> RegistrationService:
        r = self.resources
        return RegistrationService(
            self.session, r.registry, r.settings, self.attestations, self.ml_models, self.evaluation
        )

    @cached_property
    def ab_tests(self) -> AbTestService:
        r = self.resources
        return AbTestService(self.session, self.aliases, r.webhooks, r.metrics)

    @cached_property
    def lineage(self) -> LineageService:
        return LineageService(self.session)

    @cached_property
    def contributors(self) -> ContributorService:
        return ContributorService(self.session)
