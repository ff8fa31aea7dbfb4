"""The application factory. Nothing is built at import time: `create_app(settings)` wires the
routers, and the lifespan builds (and closes) the engine, the cache and the registry client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from pydantic.json_schema import models_json_schema

from app import __version__
from app.adapters.cache import Cache
from app.adapters.loader import ModelLoader
from app.adapters.memory import Memory
from app.adapters.registry import Registry
from app.adapters.runners import Runners
from app.adapters.webhooks import Webhooks
from app.api.contract import add_links, declare_no_nul
from app.api.deps import Resources
from app.api.errors import add_exception_handlers
from app.api.middleware import RequestContext
from app.api.routers import (
    ab_tests,
    aliases,
    api_keys,
    attestations,
    benchmarks,
    console,
    contributors,
    docs,
    experiments,
    health,
    lineage,
    ml_models,
    predictions,
)
from app.api.routing import App, include
from app.core import heap
from app.core.breaker import Breaker
from app.core.config import Settings
from app.core.errors import PROBLEM_MEDIA_TYPE
from app.core.metrics import Metrics
from app.core.security import PrincipalCache, Scope
from app.core.vocabulary import PRODUCTION
from app.db.exposure_log import ExposureLog
from app.db.repositories.ml_models import VersionRepository
from app.db.session import create_engine, create_sessionmaker
from app.db.unit_of_work import UnitOfWork
from app.schemas.common import NO_NUL
from app.services.api_keys import BOOTSTRAP_KEY_NAME, ApiKeyService
from app.services.reconciliation import Reconciler
from app.services.signing import Signer

log = logging.getLogger(__name__)

TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
            signer=Signer.from_settings(settings),
            memory=memory,
            exposures=ExposureLog(create_engine(settings, pool_size=1)),
            loader=ModelLoader(registry, Runners(settings, metrics), settings, metrics),
            webhooks=Webhooks(
                settings.webhook_secret.get_secret_value() if settings.webhook_secret else None,
                metrics,
                allow_private_networks=settings.webhook_allow_private_networks,
            ),
        )
        app.state.resources = resources
        warmup: asyncio.Task[None] | None = None
        lag: asyncio.Task[None] | None = None
        reconciling: asyncio.Task[None] | None = None
        try:
            await resources.registry.start()
            await _ensure_bootstrap_key(resources)
            heap.settle()  # what start-up built lives as long as the process
            refusal = resources.loader.runners.refusal
            if refusal:
                log.error("no model will be loaded: %s", refusal)
            warmup = asyncio.create_task(_warm_models(resources))
            lag = asyncio.create_task(_watch_loop(resources.metrics))
            if settings.registry_reconcile_interval_s > 0:
                reconciler = Reconciler(sessionmaker, registry, settings, metrics)
                reconciling = asyncio.create_task(
                    reconciler.every(settings.registry_reconcile_interval_s)
                )
            yield
        finally:
            for task in (warmup, lag, reconciling):
                if task is not None:
                    task.cancel()
            await resources.loader.close()
            await resources.webhooks.close()
            resources.registry.close()
            await resources.cache.close()
            await resources.exposures.close()
            await engine.dispose()

    app = App(
        title="Hokusai ML Platform API",
        version=__version__,
        description=(
            "Model registry on MLflow with lineage, DeltaOne attestations, contributor impact, "
            "cached predictions and A/B tests. Errors are `application/problem+json`."
        ),
        lifespan=lifespan,
        docs_url=None,  # served from shipped assets by the docs router, not from a CDN
        redoc_url=None,
        # Prometheus is always on (/metrics); OpenTelemetry only when asked for, because even
        # unconfigured FastAPI looks for its providers on every request.
        telemetry=None if settings.opentelemetry else TELEMETRY_OFF,
    )
    add_exception_handlers(app)
    app.add_middleware(
        RequestContext,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        max_artifact_bytes=settings.max_artifact_bytes,
    )
    # Routes are matched in order, one by one: the hottest go first.
    include(
        app,
        [
            predictions.router,
            ab_tests.router,
            health.router,
            api_keys.router,
            ml_models.router,
            aliases.router,
            lineage.router,
            attestations.router,
            benchmarks.router,
            contributors.router,
            experiments.router,
            docs.router,
            console.router,
        ],
    )
    docs.mount_assets(app.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI's documented hook
    return app


async def _ensure_bootstrap_key(resources: Resources) -> None:
    key = resources.settings.bootstrap_api_key
    if key is None:
        return
    async with resources.unit_of_work() as session:
        created = await ApiKeyService(session).ensure_key(
            BOOTSTRAP_KEY_NAME, [Scope.ADMIN], key.get_secret_value()
        )
    if created:
        log.info("bootstrap admin API key registered")


async def _watch_loop(metrics: Metrics, every_s: float = 0.1) -> None:
    """The event loop's lag: how much later than asked a timer fires, every `every_s`."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(every_s)
        metrics.loop_lag_seconds.observe(max(0.0, loop.time() - started - every_s))


async def _warm_models(resources: Resources) -> None:
    """Load the versions behind `production` in the background; readiness shows progress."""
    try:
        async with resources.sessionmaker() as session:
            targets = await VersionRepository(session).behind_alias(PRODUCTION)
        await resources.loader.warm(targets)
    except Exception:  # a warm-up that fails leaves loading to the first requests
        resources.loader.warmup["status"] = "failed"
        log.exception("model warm-up failed")


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with error bodies declared as application/problem+json only."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        _, bodies = models_json_schema(
            [(model, "validation") for model in ml_models.BODY_SCHEMAS],
            ref_template="#/components/schemas/{model}",
        )
        schema["components"]["schemas"].update(bodies["$defs"])
        declare_no_nul(schema, NO_NUL)
        add_links(schema)
        for path in schema["paths"].values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if (
                        status[0] in "45"
                        and "application/json" in content
                        and PROBLEM_MEDIA_TYPE in content
                    ):
                        content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
        app.openapi_schema = schema
    return app.openapi_schema
