"""Prometheus metrics. Each app owns its registry, so two apps in one process never mix counts.
With several worker processes (`HOKUSAI_WORKERS`), `serve` sets PROMETHEUS_MULTIPROC_DIR before
they start: prometheus-client then keeps every value in a file of that folder, and `/metrics`
answers the sum over all workers, whichever worker serves it."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        # Requests this process is serving now: `in_flight`'s own share, read where a request
        # may act alone (`app/adapters/batching.py`).
        self.serving = 0
        self.registry = CollectorRegistry()
        self.shared = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        if not self.shared:  # per process: meaningless summed over workers
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        self.requests = Counter(
            "hokusai_http_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "hokusai_http_request_duration_seconds",
            "HTTP request latency by route template, method and status",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "hokusai_http_requests_in_flight",
            "Requests being served",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.loop_lag_seconds = Histogram(
            "hokusai_event_loop_lag_seconds",
            "How late the event loop ran a 100 ms timer: time it spent on something that did "
            "not yield (every request waits that long)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.dependency_seconds = Histogram(
            "hokusai_dependency_check_duration_seconds",
            "Readiness check latency per dependency",
            ["dependency", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "hokusai_rate_limited_total",
            "Requests refused by the per-key rate limit",
            registry=self.registry,
        )
        self.rate_limit_fail_open = Counter(
            "hokusai_rate_limit_fail_open_total",
            "Requests let through unchecked because Redis was unreachable",
            registry=self.registry,
        )
        self.cache_operations = Counter(
            "hokusai_cache_operations_total",
            "Cache lookups by result (hit, miss) and failed Redis operations (error)",
            ["operation", "result"],
            registry=self.registry,
        )
        self.auth_lookups = Counter(
            "hokusai_auth_lookups_total",
            "API keys checked in the database (the others were trusted from this process's "
            "memory; requests with the same key at the same moment share one check)",
            registry=self.registry,
        )
        self.auth_stale = Counter(
            "hokusai_auth_stale_total",
            "Requests let through on a key checked earlier, because the database was unreachable",
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "hokusai_auth_failures_total",
            "Requests refused for a missing, unknown or revoked key, or a missing scope",
            ["reason"],
            registry=self.registry,
        )

        self.prediction_seconds = Histogram(
            "hokusai_prediction_duration_seconds",
            "Predict calls, from resolving the version to the last row, per model",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_load_seconds = Histogram(
            "hokusai_model_load_duration_seconds",
            "Loading a model version from MLflow, per model and outcome",
            ["model", "outcome"],
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.model_calls = Counter(
            "hokusai_model_calls_total",
            "Calls of a loaded model, per model: alone, or gathering the rows of several "
            "concurrent requests (adaptive batching)",
            ["model", "mode"],
            registry=self.registry,
        )
        self.model_call_rows = Histogram(
            "hokusai_model_call_rows",
            "Rows per call of a model (the rows of every request gathered into it)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 5000),
            registry=self.registry,
        )
        self.batch_wait_seconds = Histogram(
            "hokusai_model_batch_wait_seconds",
            "How long rows waited for the model to be free before a gathered call",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "hokusai_prediction_batch_rows",
            "Rows per predict call",
            buckets=(1, 2, 5, 10, 50, 100, 500, 1000, 5000),
            registry=self.registry,
        )
        self.predicted_rows = Counter(
            "hokusai_predicted_rows_total",
            "Rows answered, by where the answer came from (cache, model)",
            ["model", "source"],
            registry=self.registry,
        )
        self.resolutions = Counter(
            "hokusai_version_resolutions_total",
            "Versions resolved for a prediction, by where from (memory, database, shared: the "
            "database read another request had in flight)",
            ["source"],
            registry=self.registry,
        )
        self.loaded_models = Gauge(
            "hokusai_loaded_models",
            "Model versions held in memory (the most any worker holds)",
            registry=self.registry,
            multiprocess_mode="livemax",
        )

        self.model_runners = Gauge(
            "hokusai_model_runners",
            "Model runner processes alive (one or more per loaded version)",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.model_runner_restarts = Counter(
            "hokusai_model_runner_restarts_total",
            "Runners stopped and replaced, per model and reason (crashed, timeout, memory, "
            "failed to load, cancelled mid-call)",
            ["model", "reason"],
            registry=self.registry,
        )

        self.ab_events = Counter(
            "hokusai_ab_events_total",
            "A/B test events per test name and variant: exposures, outcomes, predictions",
            ["test", "variant", "event"],
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "hokusai_webhook_deliveries_total",
            "A/B test webhook deliveries by outcome (delivered, retried, failed, refused)",
            ["outcome"],
            registry=self.registry,
        )

        self.registry_repairs = Counter(
            "hokusai_registry_repairs_total",
            "What the registry reconciler changed in MLflow: orphan versions deleted "
            "(orphan_version), aliases set to Postgres's (alias)",
            ["kind"],
            registry=self.registry,
        )
        self.registry_orphans = Gauge(
            "hokusai_registry_orphan_versions",
            "MLflow versions this service published with no Postgres row, at the last "
            "reconciliation (including those still in their grace period)",
            registry=self.registry,
            multiprocess_mode="max",
        )

    def render(self) -> bytes:
        if not self.shared:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        multiprocess.MultiProcessCollector(every_worker)  # type: ignore[no-untyped-call]
        return generate_latest(every_worker)

    def request_began(self) -> None:
        self.in_flight.inc()
        self.serving += 1

    def request_ended(self) -> None:
        self.in_flight.dec()
        self.serving -= 1

    def child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered: prometheus_client checks the labels on every call,
        which the hot paths (every request, every prediction) would pay each time."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found
