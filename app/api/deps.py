"""Tiny dependencies that hand out what the lifespan built: settings, metrics, the request's
transaction, and the services (`app/wiring.py` builds them all). (Who is calling:
`app/api/auth.py`; doing a write once per key: `app/api/idempotency.py`.)

Every dependency is `async def`, even when it awaits nothing: FastAPI runs a plain `def` dependency
in a worker thread, and that thread hop per dependency costs more than the work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

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


def _service(build: Callable[[Services], object]) -> Any:
    """The dependency that hands a route one service of the request's unit of work."""

    async def service(services: ServicesDep) -> object:
        return build(services)

    return Depends(service)


ApiKeyServiceDep = Annotated[ApiKeyService, _service(lambda s: s.api_keys)]
BenchmarkServiceDep = Annotated[BenchmarkService, _service(lambda s: s.benchmarks)]
MlModelServiceDep = Annotated[MlModelService, _service(lambda s: s.ml_models)]
AttestationServiceDep = Annotated[AttestationService, _service(lambda s: s.attestations)]
RegistrationServiceDep = Annotated[RegistrationService, _service(lambda s: s.registration)]
AliasServiceDep = Annotated[AliasService, _service(lambda s: s.aliases)]
AbTestServiceDep = Annotated[AbTestService, _service(lambda s: s.ab_tests)]
LineageServiceDep = Annotated[LineageService, _service(lambda s: s.lineage)]
ContributorServiceDep = Annotated[ContributorService, _service(lambda s: s.contributors)]


# Services that hold no session: app-wide, so a prediction opens no transaction.


async def get_traffic(resources: ResourcesDep) -> Traffic:
    return resources.traffic


async def get_experiment_service(resources: ResourcesDep) -> ExperimentService:
    return resources.experiments


TrafficDep = Annotated[Traffic, Depends(get_traffic)]
ExperimentServiceDep = Annotated[ExperimentService, Depends(get_experiment_service)]
