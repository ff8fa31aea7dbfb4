"""Predictions: the version is resolved first (so moving an alias takes
effect on the very next call), rows are looked up in the Redis cache in one round trip, only the
misses reach the model, in one call, and the answers go back in order. Redis trouble is a miss.

A process remembers the versions it resolved (`app/adapters/memory.py`) and checks them in the same
Redis round trip that looks up the rows: a cached prediction touches Postgres only when the
model's versions or aliases changed.

Rules: docs/reference/specification.md#predictions-and-the-cache."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from sqlalchemy.ext.asyncio import AsyncEngine

from app.adapters.cache import Cache
from app.adapters.memory import Memo
from app.adapters.registry import Registry
from app.adapters.runners import Column, RunnerGroup, Runners
from app.core.config import Settings
from app.core.errors import (
    BatchTooLarge,
    ModelArchived,
    ModelNotFound,
    ModelUnavailable,
    RegistryRejected,
    RegistryUnavailable,
    ValidationFailed,
    VersionArchived,
    VersionNotFound,
)
from app.core.metrics import Metrics
from app.core.vocabulary import PRODUCTION
from app.db.models import MlModel, ModelVersion
from app.db.repositories.ml_models import alias_names, model_names, resolve_target
from app.schemas.predictions import CacheCounts, Prediction, PredictRequest
from app.services import artifacts
from app.services.batching import Batcher

log = logging.getLogger(__name__)

NUMBER_TYPES = {"double", "float"}
INTEGER_TYPES = {"long", "integer"}


@dataclass(frozen=True)
class Target:
    """The concrete version a prediction runs on."""

    model_id: uuid.UUID
    model: str
    version: int
    source_uri: str
    artifact_digest: str


@dataclass(frozen=True)
class Served:
    """A loaded version: its runners, and its calls (gathered by `app/services/batching.py`)."""

    model: RunnerGroup
    call: Batcher


class ModelLoader:
    """Loaded versions in a bounded LRU, app-wide. A version is loaded into runner processes
    (`app/adapters/runners.py`), never into this one: its files are downloaded from MLflow and
    checked against the digest recorded at registration first. Concurrent first requests for
    one version share one load; a load that fails is forgotten, so the next request tries again."""

    def __init__(
        self, registry: Registry, runners: Runners, settings: Settings, metrics: Metrics
    ) -> None:
        self.registry = registry
        self.runners = runners
        self.settings = settings
        self.capacity = settings.model_cache_size
        self.timeout_s = settings.model_load_timeout_s
        self.metrics = metrics
        self.retry_after_s = registry.retry_after_s
        self._models: OrderedDict[tuple[uuid.UUID, int], Served] = OrderedDict()
        self._loading: dict[tuple[uuid.UUID, int], asyncio.Task[Served]] = {}
        self.warmup: dict[str, Any] = {"status": "idle", "loaded": 0, "failed": 0}
        self.loads = 0

    async def get(self, target: Target) -> Served:
        key = (target.model_id, target.version)
        loaded = self._models.get(key)
        if loaded is not None:
            self._models.move_to_end(key)
            return loaded
        task = self._loading.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key, target))
            self._loading[key] = task
            task.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(task)

    async def _load(self, key: tuple[uuid.UUID, int], target: Target) -> Served:
        started = time.perf_counter()
        self.loads += 1
        try:
            group = await asyncio.wait_for(self._start(target), self.timeout_s)
        except (ModelUnavailable, RegistryUnavailable, RegistryRejected, TimeoutError) as exc:
            self.metrics.model_load_seconds.labels(target.model, "failed").observe(
                time.perf_counter() - started
            )
            log.warning("loading %s v%s failed: %s", target.model, target.version, exc)
            if isinstance(exc, ModelUnavailable):
                raise
            raise ModelUnavailable(
                f"Model {target.model} version {target.version} could not be loaded; try again",
                retry_after=self.retry_after_s,
            ) from exc
        self.metrics.model_load_seconds.labels(target.model, "loaded").observe(
            time.perf_counter() - started
        )
        served = Served(
            group,
            Batcher(
                group.call,
                model=target.model,
                enabled=self.settings.prediction_batching,
                max_rows=self.settings.prediction_batch_max_rows,
                max_wait_s=self.settings.prediction_batch_max_wait_ms / 1000,
                concurrency=group.size,
                metrics=self.metrics,
            ),
        )
        self._models[key] = served
        while len(self._models) > self.capacity:
            _, evicted = self._models.popitem(last=False)
            await evicted.model.close()
        self.metrics.loaded_models.set(len(self._models))
        return served

    async def _start(self, target: Target) -> RunnerGroup:
        folder = await self.runners.stage(
            target.artifact_digest,
            lambda staging: self._download(target.source_uri, staging),
            lambda root: asyncio.to_thread(artifacts.digest, root),
        )
        group = RunnerGroup(
            self.runners, folder, target.model, target.version, self.settings.model_runners
        )
        await group.start()
        return group

    async def _download(self, source_uri: str, staging: Path) -> Path:
        return artifacts.model_root(await self.registry.download(source_uri, staging))

    async def warm(self, targets: list[tuple[MlModel, ModelVersion]]) -> None:
        """Load the versions behind `production` in the background, at start-up."""
        self.warmup = {"status": "running", "loaded": 0, "failed": 0}
        for model, version in targets[: self.capacity]:
            try:
                await self.get(
                    Target(
                        model.id,
                        model.name,
                        version.version,
                        version.source_uri,
                        version.artifact_digest,
                    )
                )
                self.warmup["loaded"] += 1
            except ModelUnavailable:
                self.warmup["failed"] += 1
        self.warmup["status"] = "done"

    async def close(self) -> None:
        for task in list(self._loading.values()):
            task.cancel()
        while self._models:
            _, served = self._models.popitem()
            await served.model.close()
        await self.runners.close()


def row_key(cache: Cache, target: Target, row: dict[str, Any]) -> str:
    digest = hashlib.sha256(canonical_row(row)).hexdigest()
    return cache.key("pred", "v1", str(target.model_id), str(target.version), digest)


MAX_SAFE_INTEGER = 2**53 - 1


def canonical_row(row: dict[str, Any]) -> bytes:
    """The row's JCS form (RFC 8785). A flat row of ASCII names and values that `json.dumps`
    writes exactly as JCS does (ASCII strings, safe integers, booleans, null, and floats written
    without an exponent) is written by `json.dumps`, several times faster; anything else by
    rfc8785, which also refuses what JSON cannot say (NaN, infinity, unsafe integers)."""
    if all(key.isascii() for key in row) and all(_writes_as_jcs(v) for v in row.values()):
        return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return rfc8785.dumps(row)


def _writes_as_jcs(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        # Python writes 5.0 and 1e-05 where JCS writes 5 and 0.00001; between, the same digits.
        return bool(not value.is_integer() and 1e-4 <= abs(value) < 1e16)
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if kind is str:
        return bool(value.isascii())
    return kind is bool or value is None


def check_rows(rows: list[Any], columns: list[Column] | None) -> None:
    """422 naming the columns: missing, unexpected, or of the wrong type."""
    problems: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            problems.append(
                {
                    "loc": ["body", "inputs", index],
                    "msg": "a row must be an object",
                    "type": "object_type",
                }
            )
            continue
        if columns is None:
            continue
        names = {column.name for column in columns}
        for column in columns:
            if column.name not in row:
                if column.required:
                    problems.append(
                        {
                            "loc": ["body", "inputs", index, column.name],
                            "msg": f"missing column {column.name!r}",
                            "type": "missing",
                        }
                    )
            elif row[column.name] is None:
                if column.required:  # sklearn would fail on it (NaN), after the model ran
                    problems.append(
                        {
                            "loc": ["body", "inputs", index, column.name],
                            "msg": f"column {column.name!r} is null; the model's signature "
                            "requires a value",
                            "type": "missing",
                        }
                    )
            elif not _fits(row[column.name], column.type):
                problems.append(
                    {
                        "loc": ["body", "inputs", index, column.name],
                        "msg": f"column {column.name!r} must be {column.type}",
                        "type": "type_error",
                    }
                )
        for extra in sorted(row.keys() - names):
            problems.append(
                {
                    "loc": ["body", "inputs", index, extra],
                    "msg": f"unexpected column {extra!r}",
                    "type": "extra_forbidden",
                }
            )
    if problems:
        # Each kind of problem once (a batch repeats them row after row), with the first row.
        said: dict[str, int | str] = {}
        for problem in problems:
            said.setdefault(str(problem["msg"]), problem["loc"][2])
        reasons = [f"{msg} (row {row})" if len(rows) > 1 else msg for msg, row in said.items()]
        detail = "Inputs do not match the model's signature: " + "; ".join(reasons[:10])
        raise ValidationFailed(detail, errors=problems[:100])


def _fits(value: Any, kind: str) -> bool:
    """Whether a value (never None: nulls are checked before) fits the signature's type."""
    if kind in NUMBER_TYPES:
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if kind in INTEGER_TYPES:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    return True


class PredictionService:
    """Holds no database connection while a model runs: the version is resolved on a connection
    of its own, in one query."""

    def __init__(
        self,
        engine: AsyncEngine,
        cache: Cache,
        targets: Memo,
        loader: ModelLoader,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.engine = engine
        self.cache = cache
        self.targets = targets
        self.loader = loader
        self.settings = settings
        self.metrics = metrics

    async def resolve(self, name: str, version: int | None, alias: str | None) -> Target:
        """The concrete version to answer with: the one asked for, the alias's, else
        production's, else the latest. Read on every call, so an alias move counts at once."""
        # Autocommit: one round trip, no BEGIN and ROLLBACK around a single read.
        async with self.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            row = await resolve_target(connection, name, version, alias or PRODUCTION)
            if row is None:
                raise ModelNotFound.named(name, await model_names(connection))
            if alias is not None and not row.aliased:
                held = sorted(await alias_names(connection, row.id))
                raise VersionNotFound(
                    f"Model {name} has no alias {alias!r}; "
                    + (f"its aliases: {', '.join(held)}" if held else "it has none")
                )
        if row.model_archived_at is not None:
            raise ModelArchived(f"Model {row.name} is archived; unarchive it to predict")
        if row.number is None:
            raise VersionNotFound(f"Model {name} has no version {version or ''}".strip())
        if row.version_archived_at is not None:
            raise VersionArchived(f"Version {row.number} of {row.name} is archived")
        return Target(row.id, row.name, row.number, row.source_uri, row.artifact_digest)

    async def predict(self, name: str, request: PredictRequest) -> Prediction:
        started = time.perf_counter()
        rows: list[Any] = (
            [request.inputs] if isinstance(request.inputs, dict) else list(request.inputs)
        )
        if len(rows) > self.settings.prediction_batch_limit:
            raise BatchTooLarge(
                f"{len(rows)} rows; at most {self.settings.prediction_batch_limit} per call"
            )
        if not rows:
            raise ValidationFailed(
                "inputs is an empty list",
                errors=[
                    {"loc": ["body", "inputs"], "msg": "at least one row", "type": "too_short"}
                ],
            )
        check_rows(rows, None)
        target, keys, cached = await self._look_up(name, request, rows)
        answers: list[Any] = [value[0] if value is not None else None for value in cached]
        misses = [index for index, value in enumerate(cached) if value is None]
        if misses:
            served = await self.loader.get(target)
            missing_rows = [rows[index] for index in misses]
            check_rows(missing_rows, served.model.columns)
            outputs = await served.call(missing_rows)
            fresh = {}
            for index, output in zip(misses, outputs, strict=True):
                answers[index] = output
                fresh[keys[index]] = [output]
            await self.cache.set_many(fresh, self.settings.cache_ttl_s)
        hits = len(rows) - len(misses)
        self.metrics.batch_rows.observe(len(rows))
        self.metrics.child(self.metrics.predicted_rows, target.model, "cache").inc(hits)
        self.metrics.child(self.metrics.predicted_rows, target.model, "model").inc(len(misses))
        self.metrics.child(self.metrics.prediction_seconds, target.model).observe(
            time.perf_counter() - started
        )
        return Prediction(
            model=target.model,
            version=target.version,
            predictions=answers,
            cache=CacheCounts(hits=hits, misses=len(misses)),
        )

    async def _look_up(
        self, name: str, request: PredictRequest, rows: list[dict[str, Any]]
    ) -> tuple[Target, list[str], list[Any | None]]:
        """The target, the rows' cache keys and their cached values. One Redis round trip when
        this process resolved the target before and the model is unchanged."""
        recall = await self.targets.read_through(
            (name, request.version, request.alias),
            lambda: self.resolve(name, request.version, request.alias),
            alongside=lambda target: self._keys(target, rows),
        )
        source = "memory" if recall.remembered else "database"
        self.metrics.child(self.metrics.resolutions, source).inc()
        return recall.value, list(recall.alongside), recall.found

    def _keys(self, target: Target, rows: list[dict[str, Any]]) -> list[str]:
        try:
            return [row_key(self.cache, target, row) for row in rows]
        except (ValueError, TypeError) as exc:  # NaN, infinity: JSON cannot say them
            raise ValidationFailed(f"inputs are not plain JSON: {exc}") from exc
