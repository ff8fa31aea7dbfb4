"""Tiny dependencies that hand out what the lifespan built: settings, metrics, the request's
transaction, and the services (`app/wiring.py` builds them all). (Who is calling:
`app/api/auth.py`; doing a write once per key: `app/api/idempotency.py`.)

Every dependency is `async def`, even when it awaits nothing: FastAPI runs a plain `def` dependency
in a worker thread, and that thread hop per dependency costs more than the work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.metrics import Metrics
from app.services.ab_tests import AbTestService
from app.services.aliases import AliasService
from app.services.api_keys import ApiKeyService
from app.services.attestations import AttestationService
from app.services.benchmarks import BenchmarkService
from app.services.contributors import ContributorService
from app.services.experiments import ExperimentService
from app.services.lineage import LineageService
from app.services.ml_models import MlModelService
from app.services.registration import RegistrationService
from app.services.traffic import Traffic
from app.wiring import Resources, Services


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


async def get_services(session: SessionDep, resources: ResourcesDep) -> Services:
    return Services(session, resources)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_api_key_service(services: ServicesDep) -> ApiKeyService:
    return services.api_keys


async def get_benchmark_service(services: ServicesDep) -> BenchmarkService:
    return services.benchmarks


async def get_ml_model_service(services: ServicesDep) -> MlModelService:
    return services.ml_models


async def get_attestation_service(services: ServicesDep) -> AttestationService:
    return services.attestations


async def get_registration_service(services: ServicesDep) -> RegistrationService:
    return services.registration


async def get_alias_service(services: ServicesDep) -> AliasService:
    return services.aliases


async def get_ab_test_service(services: ServicesDep) -> AbTestService:
    return services.ab_tests


async def get_lineage_service(services: ServicesDep) -> LineageService:
    return services.lineage


async def get_contributor_service(services: ServicesDep) -> ContributorService:
    return services.contributors


# Services that hold no session: app-wide, so a prediction opens no transaction.


async def get_traffic(resources: ResourcesDep) -> Traffic:
    return resources.traffic


async def get_experiment_service(resources: ResourcesDep) -> ExperimentService:
    return resources.experiments


ApiKeyServiceDep = Annotated[ApiKeyService, Depends(get_api_key_service)]
BenchmarkServiceDep = Annotated[BenchmarkService, Depends(get_benchmark_service)]
MlModelServiceDep = Annotated[MlModelService, Depends(get_ml_model_service)]
AttestationServiceDep = Annotated[AttestationService, Depends(get_attestation_service)]
RegistrationServiceDep = Annotated[RegistrationService, Depends(get_registration_service)]
AliasServiceDep = Annotated[AliasService, Depends(get_alias_service)]
AbTestServiceDep = Annotated[AbTestService, Depends(get_ab_test_service)]
LineageServiceDep = Annotated[LineageService, Depends(get_lineage_service)]
ContributorServiceDep = Annotated[ContributorService, Depends(get_contributor_service)]
TrafficDep = Annotated[Traffic, Depends(get_traffic)]
ExperimentServiceDep = Annotated[ExperimentService, Depends(get_experiment_service)]
