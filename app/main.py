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
from app.api.contract import add_links, declare_no_nul
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
from app.core.config import Settings
from app.core.errors import PROBLEM_MEDIA_TYPE
from app.core.metrics import Metrics
from app.core.security import Scope
from app.core.vocabulary import PRODUCTION
from app.db.repositories.ml_models import VersionRepository
from app.schemas.common import NO_NUL
from app.services.api_keys import BOOTSTRAP_KEY_NAME
from app.services.reconciliation import Reconciler
from app.wiring import Resources, Services, open_resources

log = logging.getLogger(__name__)

TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings, metrics) as resources:
            app.state.resources = resources
            async with _background(resources):
                yield

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


@asynccontextmanager
async def _background(resources: Resources) -> AsyncIterator[None]:
    """Start-up on what `open_resources` built, and the tasks that run while the app serves."""
    settings = resources.settings
    tasks: list[asyncio.Task[None]] = []
    try:
        # The signing key is read now: a bad one stops start-up, not the first registration.
        log.info("attestations are signed with key %s", resources.signer.keyid)
        await resources.registry.start()
        await _ensure_bootstrap_key(resources)
        heap.settle()  # what start-up built lives as long as the process
        refusal = resources.loader.runners.refusal
        if refusal:
            log.error("no model will be loaded: %s", refusal)
        tasks.append(asyncio.create_task(_warm_models(resources)))
        tasks.append(asyncio.create_task(_watch_loop(resources.metrics)))
        if settings.registry_reconcile_interval_s > 0:
            reconciler = Reconciler(
                resources.sessionmaker, resources.registry, settings, resources.metrics
            )
            tasks.append(
                asyncio.create_task(reconciler.every(settings.registry_reconcile_interval_s))
            )
        yield
    finally:
        for task in tasks:
            task.cancel()


async def _ensure_bootstrap_key(resources: Resources) -> None:
    key = resources.settings.bootstrap_api_key
    if key is None:
        return
    async with resources.unit_of_work() as session:
        created = await Services(session, resources).api_keys.ensure_key(
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
