"""Tiny dependencies that hand out what the lifespan built, plus authentication and scopes.

Every dependency is `async def`, even when it awaits nothing: FastAPI runs a plain `def` dependency
in a worker thread, and that thread hop per dependency costs more than the work."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Security
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.adapters.cache import Cache, Memo
from app.adapters.registry import Registry
from app.adapters.webhooks import Webhooks
from app.core.config import API_KEY_PATTERN, Settings
from app.core.errors import Forbidden, RateLimited, Unauthenticated
from app.core.metrics import Metrics
from app.core.security import Principal, PrincipalCache, Scope
from app.db.session import AB_TEST, MODEL, changes, committed, unreachable
from app.services.ab_tests import AbTestService, Traffic
from app.services.api_keys import ApiKeyService
from app.services.attestations import AttestationService
from app.services.contributors import ContributorService
from app.services.experiments import ExperimentService
from app.services.idempotency import IdempotencyService, fingerprint
from app.services.lineage import LineageService
from app.services.ml_models import MlModelService
from app.services.predictions import ModelLoader, PredictionService, Target
from app.services.signing import Signer


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
    signer: Signer
    targets: Memo[Target]
    traffic: Traffic
    loader: ModelLoader
    webhooks: Webhooks

    def memo(self, kind: str) -> Memo[Any]:
        memos: dict[str, Memo[Any]] = {MODEL: self.targets, AB_TEST: self.traffic.live}
        return memos[kind]


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_settings(resources: ResourcesDep) -> Settings:
    return resources.settings


async def get_metrics(resources: ResourcesDep) -> Metrics:
    return resources.metrics


@asynccontextmanager
async def transaction(resources: Resources) -> AsyncIterator[AsyncSession]:
    """A session whose work is committed at the end, or rolled back on any error. Models whose
    versions or aliases the work changed are announced once it is committed."""
    async with resources.sessionmaker() as session:
        try:
            yield session
            if session.in_transaction():  # a session left unused costs no round trip
                await session.commit()
        except BaseException:
            await session.rollback()
            raise
        for kind, sources in changes(session).items():
            await resources.memo(kind).changed(sources)
        for action in committed(session):
            action()


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed before the response is sent, rolled back on error."""
    async with transaction(resources) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
# scope="function": the commit runs before the response goes out, so a failed commit is an error
# response, never a 2xx for work that was lost.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_api_key_service(session: SessionDep, resources: ResourcesDep) -> ApiKeyService:
    return ApiKeyService(session, resources.principals)


ApiKeyServiceDep = Annotated[ApiKeyService, Depends(get_api_key_service)]


async def get_ml_model_service(session: SessionDep, resources: ResourcesDep) -> MlModelService:
    return MlModelService(session, resources.registry, resources.settings, resources.signer)


async def get_attestation_service(
    session: SessionDep, resources: ResourcesDep
) -> AttestationService:
    return AttestationService(session, resources.signer)


AttestationServiceDep = Annotated[AttestationService, Depends(get_attestation_service)]


def prediction_service(resources: Resources) -> PredictionService:
    return PredictionService(
        resources.engine,
        resources.cache,
        resources.targets,
        resources.loader,
        resources.settings,
        resources.metrics,
    )


async def get_prediction_service(resources: ResourcesDep) -> PredictionService:
    return prediction_service(resources)


PredictionServiceDep = Annotated[PredictionService, Depends(get_prediction_service)]


def ab_test_service(session: AsyncSession, resources: Resources) -> AbTestService:
    return AbTestService(
        session,
        MlModelService(session, resources.registry, resources.settings, resources.signer),
        prediction_service(resources),
        resources.webhooks,
        resources.metrics,
        resources.traffic,
    )


async def get_ab_test_service(session: SessionDep, resources: ResourcesDep) -> AbTestService:
    return ab_test_service(session, resources)


AbTestServiceDep = Annotated[AbTestService, Depends(get_ab_test_service)]


async def get_lineage_service(session: SessionDep) -> LineageService:
    return LineageService(session)


LineageServiceDep = Annotated[LineageService, Depends(get_lineage_service)]


async def get_contributor_service(session: SessionDep) -> ContributorService:
    return ContributorService(session)


ContributorServiceDep = Annotated[ContributorService, Depends(get_contributor_service)]


MlModelServiceDep = Annotated[MlModelService, Depends(get_ml_model_service)]


async def get_experiment_service(resources: ResourcesDep) -> ExperimentService:
    return ExperimentService(resources.registry)


ExperimentServiceDep = Annotated[ExperimentService, Depends(get_experiment_service)]


bearer_scheme = HTTPBearer(auto_error=False, description="`Authorization: Bearer hk_...`")
header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: hk_...`")
# The operation's `security`, as FastAPI derives it from the two schemes above.
API_KEY_SECURITY: list[dict[str, list[str]]] = [
    {bearer_scheme.scheme_name: []},
    {header_scheme.scheme_name: []},
]


async def authenticate(
    request: Request,
    resources: ResourcesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    header_key: Annotated[str | None, Security(header_scheme)],
) -> Principal:
    secret = bearer.credentials if bearer is not None else header_key
    return await principal_of(resources, secret, client_address(request))


def client_address(request: Request) -> str:
    """The caller's address (the proxy's X-Forwarded-For when uvicorn trusts that proxy)."""
    return request.client.host if request.client is not None else "unknown"


async def principal_of(resources: Resources, secret: str | None, address: str) -> Principal:
    """The key's principal, once the key is known, not revoked and within its rate limit."""
    if not secret:
        resources.metrics.auth_failures.labels("missing").inc()
        raise Unauthenticated("Send an API key as 'Authorization: Bearer hk_...' or 'X-API-Key'")
    principal = resources.principals.get(secret) or await _look_up(resources, secret, address)
    await enforce_rate_limit(resources, principal.id)
    return principal


async def _look_up(resources: Resources, secret: str, address: str) -> Principal:
    """A key this process does not trust yet, checked in the database. Failures are counted per
    client address: past the limit the address gets 429 without a lookup, so a flood of bad keys
    costs the database nothing. While the database cannot be reached, a key checked recently is
    served as it was (stale-if-error); any answer from the database ends that at once."""
    minute, left_s = _this_minute()
    failures = resources.cache.key("authfail", address, minute)
    limit = resources.settings.auth_failures_per_minute
    if limit and resources.cache.enabled:
        [so_far] = await resources.cache.get_many([failures])
        if isinstance(so_far, int) and so_far >= limit:
            resources.metrics.auth_failures.labels("throttled").inc()
            raise RateLimited(retry_after=left_s)
    principal = None
    if API_KEY_PATTERN.match(secret):  # a malformed key is refused without a lookup
        try:
            # A session of its own: the request's transaction (if it has one) starts later, and
            # a request that needs none (a prediction) holds no connection while it works.
            async with resources.sessionmaker() as session:
                principal = await ApiKeyService(session, resources.principals).authenticate(secret)
        except Exception as exc:
            principal = resources.principals.stale(secret) if unreachable(exc) else None
            if principal is None:
                raise
            resources.metrics.auth_stale.inc()
            return principal
    if principal is None:
        resources.metrics.auth_failures.labels("invalid").inc()
        if limit and resources.cache.enabled:
            await resources.cache.hit_window(failures, 60)
        raise Unauthenticated("The API key is unknown or revoked")
    return principal


async def authorize(request: Request, scope: Scope) -> tuple[Resources, Principal]:
    """What `require(scope)` checks, for a hot route that declares no dependencies (FastAPI's
    dependency solving costs more than the rest of a cached prediction). Such a route declares
    `API_KEY_SECURITY` in its OpenAPI operation itself."""
    resources: Resources = request.app.state.resources
    secret = request.headers.get("x-api-key")
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() == "bearer" and credentials:
        secret = credentials
    principal = await principal_of(resources, secret, client_address(request))
    return resources, check_scope(principal, scope, resources.metrics)


def check_scope(principal: Principal, scope: Scope, metrics: Metrics) -> Principal:
    if scope not in principal.scopes:
        metrics.auth_failures.labels("scope").inc()
        raise Forbidden(f"This API key lacks the '{scope}' scope")
    return principal


async def enforce_rate_limit(resources: Resources, api_key_id: uuid.UUID) -> None:
    """Fixed one-minute window per key in Redis. Without Redis the limit is not enforced."""
    limit = resources.settings.rate_limit_per_minute
    if limit == 0 or not resources.cache.enabled:
        return
    minute, left_s = _this_minute()
    count = await resources.cache.hit_window(
        resources.cache.key("ratelimit", str(api_key_id), minute), 60
    )
    if count is None:
        resources.metrics.rate_limit_fail_open.inc()
    elif count > limit:
        resources.metrics.rate_limited.inc()
        raise RateLimited(retry_after=left_s)


def _this_minute() -> tuple[str, int]:
    """The fixed one-minute window both limits count in, and the whole seconds left in it."""
    now = time.time()
    return str(int(now // 60)), max(1, 60 - int(now % 60))


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def require(scope: Scope) -> Callable[[Principal, Metrics], Awaitable[Principal]]:
    async def scoped(principal: PrincipalDep, metrics: MetricsDep) -> Principal:
        return check_scope(principal, scope, metrics)

    return scoped


AdminDep = Annotated[Principal, Depends(require(Scope.ADMIN))]
ReaderDep = Annotated[Principal, Depends(require(Scope.READ))]
WriterDep = Annotated[Principal, Depends(require(Scope.WRITE))]
PredictorDep = Annotated[Principal, Depends(require(Scope.PREDICT))]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Repeat a request safely: the same key and body return the first response",
    ),
]


class Idempotent:
    """Wraps a route whose effect must happen once per key (creating POSTs, outcome batches):
    `await idempotent(principal, body, create)` where `create` returns a JSON-able body. Without
    an Idempotency-Key header it just runs `create`."""

    def __init__(self, request: Request, service: IdempotencyService, key: str | None) -> None:
        self.request = request
        self.service = service
        self.key = key

    def request_key(self, principal: Principal) -> str | None:
        """A key for effects outside Postgres, the same across retries with the same
        Idempotency-Key; None without one."""
        if self.key is None:
            return None
        return hashlib.sha256(f"{principal.id}:{self.key}".encode()).hexdigest()[:32]

    async def __call__(
        self,
        principal: Principal,
        request_body: Any,
        create: Callable[[], Awaitable[Any]],
        status: int = 201,
    ) -> JSONResponse:
        async def created() -> tuple[int, Any]:
            return status, jsonable_encoder(await create())

        if self.key is None:
            _, body = await created()
            return JSONResponse(body, status_code=status)
        stored = await self.service.run(
            principal.id,
            self.key,
            fingerprint(self.request.method, self.request.url.path, jsonable_encoder(request_body)),
            created,
        )
        headers = {"Idempotent-Replayed": "true"} if stored.replayed else {}
        return JSONResponse(stored.body, status_code=stored.status, headers=headers)


async def get_idempotent(
    request: Request, session: SessionDep, settings: SettingsDep, key: IdempotencyKey = None
) -> Idempotent:
    return Idempotent(request, IdempotencyService(session, settings.idempotency_ttl_s), key)


IdempotentDep = Annotated[Idempotent, Depends(get_idempotent)]
