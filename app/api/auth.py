"""Who is calling: the API key (Bearer or X-API-Key), checked against this replica's trust
cache, then Postgres (with stale-if-error), its scopes, the per-key rate limit and the per-address
failure throttle. Routers declare `ReaderDep`, `WriterDep`, `PredictorDep` or `AdminDep`.

Rules: docs/reference/specification.md#access."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from app.api.deps import ResourcesDep
from app.core.config import API_KEY_PATTERN
from app.core.errors import DatabaseUnavailable, Forbidden, RateLimited, Unauthenticated
from app.core.metrics import Metrics
from app.core.security import Principal, Scope, key_lookup
from app.db.session import unreachable
from app.services.api_keys import ApiKeyService
from app.services.readiness import within
from app.wiring import Resources


class BearerKey(HTTPBearer):
    """FastAPI's bearer scheme (the same OpenAPI), answering the token alone: no credentials
    object to validate on every request."""

    async def __call__(self, request: HTTPConnection) -> str | None:  # type: ignore[override]
        scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
        return credentials if scheme.lower() == "bearer" and credentials else None


bearer_scheme = BearerKey(
    auto_error=False, description="`Authorization: Bearer hk_...`", scheme_name="HTTPBearer"
)
header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: hk_...`")


async def authenticate(
    request: Request,
    resources: ResourcesDep,
    bearer: Annotated[str | None, Security(bearer_scheme)],
    header_key: Annotated[str | None, Security(header_scheme)],
) -> Principal:
    secret = bearer if bearer is not None else header_key
    return await principal_of(resources, secret, client_address(request))


def client_address(request: Request) -> str:
    """The caller's address (the proxy's X-Forwarded-For when uvicorn trusts that proxy)."""
    client = request.scope.get("client")  # read from the scope: `request.client` builds a tuple
    return client[0] if client else "unknown"


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
    costs the database at most one small query a second (`_exists`), except for a key that
    exists, which is still looked up and let through: a valid key is never locked out by
    others' failures from its address (a shared NAT, say). While the
    database cannot be reached, a key checked recently is served as it was (stale-if-error); any
    answer from the database ends that at once."""
    minute, left_s = _this_minute()
    failures = resources.cache.key("authfail", address, minute)
    limit = resources.settings.auth_failures_per_minute
    throttled = False
    if limit and resources.cache.enabled:
        [so_far] = await resources.cache.get_many([failures])
        throttled = isinstance(so_far, int) and so_far >= limit
        if throttled and not await _exists(resources, secret):
            resources.metrics.auth_failures.labels("throttled").inc()
            raise RateLimited(retry_after=left_s)
    principal = None
    if _well_formed(secret):  # a malformed key is refused without a lookup
        try:
            principal = await _check(resources, secret)
        except Exception as exc:
            hung = isinstance(exc, TimeoutError)
            if not (hung or unreachable(exc)):
                raise
            if hung:  # a refused connection fails fast anyway: only a hang is remembered
                resources.database.trip()
            principal = resources.principals.stale(secret)
            if principal is None:
                raise DatabaseUnavailable(
                    "The database did not answer" if hung else "The database is not reachable",
                    retry_after=resources.settings.retry_after_s,
                ) from exc
            resources.metrics.auth_stale.inc()
            return principal
    if principal is None:
        resources.metrics.auth_failures.labels("invalid").inc()
        if limit and resources.cache.enabled:
            await resources.cache.hit_window(failures, 60)
        if throttled:
            raise RateLimited(retry_after=left_s)
        raise Unauthenticated("The API key is unknown or revoked")
    return principal


async def _check(resources: Resources, secret: str) -> Principal | None:
    """The key looked up in the database, within `HOKUSAI_DATABASE_TIMEOUT_S`; while the
    database was just found down or hung, not at all (TimeoutError at once): a hung database
    must not hold every request that needs a key for its full timeout, again and again. The
    requests that need the same key checked at the same time share one lookup."""
    if resources.database.open:
        raise TimeoutError

    async def look_up() -> Principal | None:
        # A session of its own: the request's transaction (if it has one) starts later, and a
        # request that needs none (a prediction) holds no connection while it works.
        resources.metrics.auth_lookups.inc()
        async with resources.sessionmaker() as session:
            return await ApiKeyService(session, resources.principals).authenticate(secret)

    timeout_s = resources.settings.database_timeout_s
    principal = await resources.principals.checked(secret, lambda: within(look_up(), timeout_s))
    resources.database.succeeded()
    return principal


def _well_formed(secret: str) -> bool:
    return API_KEY_PATTERN.match(secret) is not None


async def _exists(resources: Resources, secret: str) -> bool:
    """Whether a key with this one's lookup prefix exists and is not revoked, from this process's
    list of them, read again at most once a second when a prefix is not in it."""
    if not _well_formed(secret):
        return False
    known = resources.principals.lookups
    if known.has(key_lookup(secret)):
        return True
    if not known.due() or resources.database.open:
        return False

    async def read() -> list[str]:
        async with resources.sessionmaker() as session:
            return await ApiKeyService(session, resources.principals).active_lookups()

    try:
        known.replace(await within(read(), resources.settings.database_timeout_s))
    except Exception as exc:
        if isinstance(exc, TimeoutError) or unreachable(exc):
            return False
        raise
    return known.has(key_lookup(secret))


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


def require(scope: Scope) -> Callable[[Principal, Resources], Awaitable[Principal]]:
    async def scoped(principal: PrincipalDep, resources: ResourcesDep) -> Principal:
        return check_scope(principal, scope, resources.metrics)

    return scoped


AdminDep = Annotated[Principal, Depends(require(Scope.ADMIN))]
ReaderDep = Annotated[Principal, Depends(require(Scope.READ))]
WriterDep = Annotated[Principal, Depends(require(Scope.WRITE))]
PredictorDep = Annotated[Principal, Depends(require(Scope.PREDICT))]
BenchmarkerDep = Annotated[Principal, Depends(require(Scope.BENCHMARK))]
