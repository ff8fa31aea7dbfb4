"""Tiny dependencies that hand out what the lifespan built: settings, metrics, the request's
transaction, and the services. (Who is calling: `app/api/auth.py`; doing a write once per key:
`app/api/idempotency.py`.)

Every dependency is `async def`, even when it awaits nothing: FastAPI runs a plain `def` dependency
in a worker thread, and that thread hop per dependency costs more than the work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.adapters.cache import Cache
from app.adapters.loader import ModelLoader
from app.adapters.memory import AB_TEST, MODEL, Memory
from app.adapters.registry import Registry
from app.adapters.webhooks import Webhooks
from app.core.breaker import Breaker
from app.core.config import Settings
from app.core.metrics import Metrics
from app.core.security import PrincipalCache
from app.db.exposure_log import ExposureLog
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
    """Everything app-wide, built once in the lifespan and closed on shutdown."""

    settings: Settings
    metrics: Metrics
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: Cache
    registry: Registry
    principals: PrincipalCache
    # Open after a query got no answer (a hung server): nothing waits on the database again
    # until its cooldown ends; key lookups serve recent keys, other calls answer 503 at once.
    database: Breaker
    unit_of_work: UnitOfWork
    signer: Signer
    memory: Memory
    exposures: ExposureLog
    loader: ModelLoader
    webhooks: Webhooks


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_settings(resources: ResourcesDep) -> Settings:
    return resources.settings


async def get_metrics(resources: ResourcesDep) -> Metrics:
    return resources.metrics


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed before the response is sent, rolled back on error."""
    async with resources.unit_of_work() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
# scope="function": the commit runs before the response goes out, so a failed commit is an error
# response, never a 2xx for work that was lost.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_api_key_service(session: SessionDep, resources: ResourcesDep) -> ApiKeyService:
    return ApiKeyService(session, resources.principals)


ApiKeyServiceDep = Annotated[ApiKeyService, Depends(get_api_key_service)]


async def get_benchmark_service(session: SessionDep, resources: ResourcesDep) -> BenchmarkService:
    return BenchmarkService(session, resources.registry, resources.settings)


BenchmarkServiceDep = Annotated[BenchmarkService, Depends(get_benchmark_service)]


async def get_ml_model_service(session: SessionDep, resources: ResourcesDep) -> MlModelService:
    return MlModelService(session, resources.registry)


MlModelServiceDep = Annotated[MlModelService, Depends(get_ml_model_service)]


async def get_attestation_service(
    session: SessionDep, resources: ResourcesDep
) -> AttestationService:
    return AttestationService(session, resources.signer)


AttestationServiceDep = Annotated[AttestationService, Depends(get_attestation_service)]


async def get_registration_service(
    session: SessionDep,
    resources: ResourcesDep,
    attestations: AttestationServiceDep,
    ml_models: MlModelServiceDep,
) -> RegistrationService:
    evaluation = EvaluationService(
        resources.loader.runners,
        resources.registry,
        BenchmarkService(session, resources.registry, resources.settings),
        resources.settings,
    )
    return RegistrationService(
        session, resources.registry, resources.settings, attestations, ml_models, evaluation
    )


RegistrationServiceDep = Annotated[RegistrationService, Depends(get_registration_service)]


async def get_alias_service(
    session: SessionDep, resources: ResourcesDep, ml_models: MlModelServiceDep
) -> AliasService:
    return AliasService(session, resources.registry, ml_models)


AliasServiceDep = Annotated[AliasService, Depends(get_alias_service)]


async def get_prediction_service(resources: ResourcesDep) -> PredictionService:
    return PredictionService(
        resources.engine,
        resources.cache,
        resources.memory[MODEL],
        resources.loader,
        resources.settings,
        resources.metrics,
    )


PredictionServiceDep = Annotated[PredictionService, Depends(get_prediction_service)]


def _ab_test_service(session: AsyncSession, resources: Resources) -> AbTestService:
    return AbTestService(
        session,
        AliasService(session, resources.registry, MlModelService(session, resources.registry)),
        resources.webhooks,
        resources.metrics,
    )


async def get_ab_test_service(session: SessionDep, resources: ResourcesDep) -> AbTestService:
    return _ab_test_service(session, resources)


AbTestServiceDep = Annotated[AbTestService, Depends(get_ab_test_service)]


@asynccontextmanager
async def _ab_tests_in_a_transaction(resources: Resources) -> AsyncIterator[AbTestService]:
    async with resources.unit_of_work() as session:
        yield _ab_test_service(session, resources)


async def get_traffic(resources: ResourcesDep, predictions: PredictionServiceDep) -> Traffic:
    """Holds no session: it opens a transaction of its own only for what the memo lacks."""
    return Traffic(
        resources.memory[AB_TEST],
        resources.exposures,
        predictions,
        resources.metrics,
        partial(_ab_tests_in_a_transaction, resources),
    )


TrafficDep = Annotated[Traffic, Depends(get_traffic)]


async def get_lineage_service(session: SessionDep) -> LineageService:
    return LineageService(session)


LineageServiceDep = Annotated[LineageService, Depends(get_lineage_service)]


async def get_contributor_service(session: SessionDep) -> ContributorService:
    return ContributorService(session)


ContributorServiceDep = Annotated[ContributorService, Depends(get_contributor_service)]


async def get_experiment_service(resources: ResourcesDep) -> ExperimentService:
    return ExperimentService(resources.registry)


ExperimentServiceDep = Annotated[ExperimentService, Depends(get_experiment_service)]
